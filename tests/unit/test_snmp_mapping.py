"""The pure parts of the SNMP poller: mapping, credentials, error translation. No sockets."""

from __future__ import annotations

from typing import Any

import pytest
from pyasn1.type import univ
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    USM_AUTH_HMAC192_SHA256,
    USM_PRIV_CFB128_AES,
    CommunityData,
    UsmUserData,
)
from pysnmp.proto import errind, rfc1902
from pysnmp.proto.api import v2c
from pysnmp.proto.rfc1905 import NoSuchInstance

from autonoc.core.errors import DeviceError, DeviceRejected, DeviceUnreachable
from autonoc.core.inventory import SnmpV2c, SnmpV3
from autonoc.core.types import Sample
from collectors.rates import RateTracker
from collectors.snmp import (
    IF_COUNTER_DISCONTINUITY_TIME,
    IF_METRICS,
    IF_NAME,
    IF_POLL_COLUMNS,
    SYS_UPTIME,
    _check,
    _map_snmp_errors,
    _to_python,
    auth_data,
    samples_from_walk,
)

IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
HC_OUT = "1.3.6.1.2.1.31.1.1.1.10"
IN_ERR = "1.3.6.1.2.1.2.2.1.14"


def _walk(
    uptime_ticks: int, in_octets: int, *, oper: int = 1, in_errors: int = 0, disc: int = 0
) -> dict[str, Any]:
    """A raw walk of one router: eth1 (ifIndex 2) carrying traffic, lo0 (ifIndex 1) idle."""
    walked: dict[str, Any] = {SYS_UPTIME: uptime_ticks}
    for index, name, octets in ((1, "lo0", 0), (2, "eth1", in_octets)):
        walked[f"{IF_NAME}.{index}"] = name
        walked[f"{IF_ADMIN}.{index}"] = 1
        walked[f"{IF_OPER}.{index}"] = oper if name == "eth1" else 1
        walked[f"{HC_IN}.{index}"] = octets
        walked[f"{HC_OUT}.{index}"] = octets // 2
        walked[f"{IN_ERR}.{index}"] = in_errors if name == "eth1" else 0
        walked[f"{IF_COUNTER_DISCONTINUITY_TIME}.{index}"] = disc
    return walked


def _by_key(samples: list[Sample]) -> dict[str, float]:
    return {s.key: s.value for s in samples}


def test_mapping_table_covers_every_canonical_metric() -> None:
    metrics = {src.metric for src in IF_METRICS.values()}
    assert metrics == {
        "if_in_bps",
        "if_out_bps",
        "if_in_errors_ps",
        "if_out_errors_ps",
        "if_in_discards_ps",
        "if_out_discards_ps",
        "if_admin_up",
        "if_oper_up",
        "sys_uptime_s",
    }
    assert IF_NAME in IF_POLL_COLUMNS and IF_COUNTER_DISCONTINUITY_TIME in IF_POLL_COLUMNS
    assert SYS_UPTIME not in IF_POLL_COLUMNS  # fetched as a scalar, not walked


def test_first_poll_has_status_and_uptime_but_no_rates() -> None:
    rates = RateTracker()
    got = _by_key(samples_from_walk("pe1", 100.0, _walk(50_000, 1_000), rates))
    assert got == {
        "sys_uptime_s": 500.0,
        "if_admin_up@lo0": 1.0,
        "if_oper_up@lo0": 1.0,
        "if_admin_up@eth1": 1.0,
        "if_oper_up@eth1": 1.0,
    }


def test_second_poll_gives_rates_in_canonical_units() -> None:
    rates = RateTracker()
    samples_from_walk("pe1", 100.0, _walk(50_000, 1_000), rates)
    samples = samples_from_walk("pe1", 110.0, _walk(51_000, 126_000, in_errors=30), rates)
    got = _by_key(samples)
    assert got["if_in_bps@eth1"] == pytest.approx(125_000 * 8 / 10)
    assert got["if_out_bps@eth1"] == pytest.approx(62_500 * 8 / 10)
    assert got["if_in_errors_ps@eth1"] == pytest.approx(3.0)
    assert got["if_in_bps@lo0"] == 0.0
    assert all(s.device == "pe1" and s.ts == 110.0 for s in samples)
    assert got["sys_uptime_s"] == 510.0


def test_oper_down_maps_to_zero() -> None:
    got = _by_key(samples_from_walk("pe1", 0.0, _walk(1, 0, oper=7), RateTracker()))
    assert got["if_oper_up@eth1"] == 0.0  # lowerLayerDown(7) is not up


def test_reboot_between_polls_drops_rates_once() -> None:
    rates = RateTracker()
    samples_from_walk("pe1", 100.0, _walk(50_000, 1_000_000), rates)
    rebooted = _by_key(samples_from_walk("pe1", 110.0, _walk(300, 2_000), rates))
    assert "if_in_bps@eth1" not in rebooted
    after = _by_key(samples_from_walk("pe1", 120.0, _walk(1_300, 12_000), rates))
    assert after["if_in_bps@eth1"] == pytest.approx(8_000.0)


def test_counter_discontinuity_drops_rates_once() -> None:
    rates = RateTracker()
    samples_from_walk("pe1", 100.0, _walk(50_000, 1_000), rates)
    reset = _by_key(samples_from_walk("pe1", 110.0, _walk(51_000, 5, disc=50_500), rates))
    assert "if_in_bps@eth1" not in reset


def test_missing_values_and_unnamed_interfaces() -> None:
    walked = {
        f"{IF_ADMIN}.9": 2,
        f"{IF_OPER}.9": 2,
        f"{HC_IN}.9": None,  # noSuchInstance
    }
    got = _by_key(samples_from_walk("r1", 0.0, walked, RateTracker()))
    assert got == {"if_admin_up@ifIndex.9": 0.0, "if_oper_up@ifIndex.9": 0.0}


def test_values_become_plain_python() -> None:
    assert _to_python(rfc1902.Counter64(2**40)) == 2**40
    assert _to_python(rfc1902.TimeTicks(123)) == 123
    assert _to_python(rfc1902.OctetString("eth1")) == "eth1"
    assert _to_python(rfc1902.OctetString(b"\xaa\xc1\xab\x00")) == b"\xaa\xc1\xab\x00"
    assert _to_python(rfc1902.IpAddress("10.0.0.1")) == "10.0.0.1"
    assert _to_python(rfc1902.ObjectIdentifier("1.3.6.1.4.1")) == "1.3.6.1.4.1"
    assert _to_python(NoSuchInstance()) is None
    assert _to_python(univ.Null()) is None


# Credentials ----------------------------------------------------------------


def test_v2c_credentials_use_read_or_write_community() -> None:
    creds = SnmpV2c(community="ro-secret", write_community="rw-secret")
    read = auth_data(creds)
    assert isinstance(read, CommunityData)
    assert read.communityName == "ro-secret"
    assert read.message_processing_model == 1
    assert auth_data(creds, write=True).communityName == "rw-secret"
    assert "ro-secret" not in repr(read)


def test_v1_and_write_falls_back_to_read_community() -> None:
    creds = SnmpV2c(version="v1", community="ro-secret")
    auth = auth_data(creds, write=True)
    assert auth.communityName == "ro-secret"
    assert auth.message_processing_model == 0


def test_v3_credentials_map_protocols() -> None:
    creds = SnmpV3(
        version="v3",
        user="noc",
        auth_protocol="sha256",
        auth_key="auth-pass-phrase",
        priv_protocol="aes",
        priv_key="priv-pass-phrase",
    )
    auth = auth_data(creds)
    assert isinstance(auth, UsmUserData)
    assert auth.userName == "noc"
    assert auth.authentication_protocol == USM_AUTH_HMAC192_SHA256
    assert auth.privacy_protocol == USM_PRIV_CFB128_AES
    assert auth.security_level == "authPriv"


def test_v3_without_auth_is_no_auth_no_priv() -> None:
    auth = auth_data(SnmpV3(version="v3", user="ro"))
    assert auth.security_level == "noAuthNoPriv"


# Error mapping ---------------------------------------------------------------


def test_timeout_becomes_device_unreachable_with_advice() -> None:
    with pytest.raises(DeviceUnreachable) as info, _map_snmp_errors("pe1", "10.0.0.1:161", 2):
        _check(errind.requestTimedOut, 0, 0, ["1.3.6.1.2.1.1.3.0"])
    message = str(info.value)
    assert info.value.device == "pe1"
    assert "no SNMP response from 10.0.0.1:161 after 2 attempts" in message
    assert "community/credentials" in message


def test_error_status_becomes_device_rejected_naming_status_and_oid() -> None:
    oids = ["1.3.6.1.2.1.2.2.1.7.1", "1.3.6.1.2.1.2.2.1.7.2"]
    with pytest.raises(DeviceRejected) as info, _map_snmp_errors("pe1", "10.0.0.1:161", 1):
        _check(None, 17, 2, oids)  # notWritable(17), on the second varbind
    assert "1.3.6.1.2.1.2.2.1.7.2" in str(info.value)


def test_named_error_status_is_spelled_out() -> None:
    pdu = v2c.SetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_error_status(pdu, 6)  # noAccess
    status = v2c.apiPDU.get_error_status(pdu)
    with pytest.raises(DeviceRejected) as info, _map_snmp_errors("pe1", "h:161", 1):
        _check(None, status, 1, ["1.3.6.1.2.1.2.2.1.7.1"])
    assert "noAccess" in str(info.value)
    assert "write community" in str(info.value)


def test_usm_report_becomes_device_rejected() -> None:
    with pytest.raises(DeviceRejected, match="SNMPv3"), _map_snmp_errors("pe1", "h:161", 1):
        _check(errind.WrongDigest(), 0, 0, [])


def test_pysnmp_exception_is_wrapped_with_cause() -> None:
    cause = PySnmpError("Bad IPv4/UDP transport address nowhere@161")
    with pytest.raises(DeviceError) as info, _map_snmp_errors("pe1", "nowhere:161", 1):
        raise cause
    assert info.value.__cause__ is cause
    assert "nowhere" in str(info.value)


def test_success_passes_through() -> None:
    with _map_snmp_errors("pe1", "h:161", 1):
        _check(None, 0, 0, [])
