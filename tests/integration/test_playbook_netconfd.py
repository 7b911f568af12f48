"""The engine's NETCONF side against Debian's yuma123 ``netconfd``, an independent server.

:class:`~playbooks.netconf_session.ConfigSession` (the session the engine
changes devices with) against netconfd behind OpenSSH: a confirmed commit
whose session is dropped rolls back, ``cancel-commit`` rolls back, and a
confirmed one stays past its timeout. Then a whole catalog playbook
(``interface-enable``) runs through the engine against netconfd, rendered by
a test platform file that maps ``set_interface_enabled`` to the test module's
namespace (``urn:autonoc:test``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from autonoc.core.audit import AuditLog
from autonoc.core.db import make_engine, upgrade
from autonoc.core.inventory import Device, Inventory, Mgmt, NetconfCredentials, Role
from autonoc.core.settings import Settings
from playbooks.base import Catalog
from playbooks.engine import PlaybookEngine
from playbooks.journal import ConfigArchive, RunJournal, RunState, TicketBook
from playbooks.netconf_session import ConfigSession
from playbooks.platforms import PLATFORMS_DIR, LeafPath, Platforms
from tests.integration.netconfd import (
    NAMESPACE,
    NetconfdServer,
    require_netconfd,
    start_netconfd,
)

BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
PLATFORM = f"""\
name: netconfd-test
description: the autonoc-test module served by yuma123 netconfd (tests only)
matches: [netconfd-test]
confirmed_commit: true
confirm_margin_s: 30
namespaces: {{at: "{NAMESPACE}"}}
ops:
  set_interface_enabled:
    - protocol: netconf
      leaf: /at:interfaces/at:interface[at:name={{target}}]/at:config/at:enabled
      values: {{"true": "true", "false": "false"}}
"""
ENABLED = "/at:interfaces/at:interface[at:name={target}]/at:config/at:enabled"
# netconfd looks at confirm timeouts only after a whole second without traffic,
# so reads while waiting come this far apart.
POLL_S = 1.5
PROMPT_S = 10.0
CONFIRM_S = 2


def _startup() -> str:
    entries = "".join(
        f"<interface><name>{name}</name><config><name>{name}</name>"
        f"<enabled>{enabled}</enabled></config></interface>"
        for name, enabled in (("eth1", "false"), ("eth2", "true"))
    )
    return f'<config xmlns="{BASE}"><interfaces xmlns="{NAMESPACE}">{entries}</interfaces></config>'


@pytest.fixture
def nc(tmp_path: Path) -> Iterator[NetconfdServer]:
    require_netconfd()
    with start_netconfd(tmp_path / "netconfd", _startup()) as server:
        yield server


def _device(nc: NetconfdServer) -> Device:
    return Device(
        name="nc1",
        role=Role.ROUTER,
        vendor="yuma123",
        platform="netconfd-test",
        mgmt=Mgmt(host=nc.host, netconf_port=nc.port),
        netconf=NetconfCredentials(
            username=nc.username, key_file=str(nc.key_file), hostkey_verify=False
        ),
    )


PATH = LeafPath.parse(ENABLED, {"at": NAMESPACE})
WHERE = {"target": "eth1", "device": "nc1"}


def _enabled(device: Device) -> str | None:
    """eth1's enabled leaf in running, read over a session of its own."""
    session = ConfigSession(device)
    try:
        return PATH.read(session.get_config(PATH.filter(WHERE)), WHERE)
    finally:
        session.close()


def _eventually(read: Callable[[], object], want: object, seconds: float) -> object:
    deadline = time.monotonic() + seconds
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(POLL_S)
        value = read()
    return value


def _commit_confirmed(device: Device, value: str, timeout_s: int) -> ConfigSession:
    session = ConfigSession(device)
    session.require_confirmed_commit()
    session.lock("candidate")
    session.discard_changes()
    session.edit_candidate(PATH.edit(WHERE, value))
    session.commit_confirmed(timeout_s)
    return session


def test_dropped_session_rolls_a_confirmed_commit_back(nc: NetconfdServer) -> None:
    device = _device(nc)
    session = _commit_confirmed(device, "true", 120)
    assert _enabled(device) == "true"
    session.drop()  # what kill -9 of the worker does to its session
    assert _eventually(lambda: _enabled(device), "false", PROMPT_S) == "false"


def test_cancel_commit_rolls_back(nc: NetconfdServer) -> None:
    device = _device(nc)
    session = _commit_confirmed(device, "true", 120)
    try:
        assert _enabled(device) == "true"
        session.cancel_commit()
        assert _enabled(device) == "false"
    finally:
        session.close()


def test_a_confirmed_commit_stays_past_its_timeout(nc: NetconfdServer) -> None:
    device = _device(nc)
    session = _commit_confirmed(device, "true", CONFIRM_S)
    session.commit()
    session.close()
    deadline = time.monotonic() + CONFIRM_S + 3 * POLL_S
    while time.monotonic() < deadline:
        assert _enabled(device) == "true"
        time.sleep(POLL_S)


def test_unconfirmed_commit_rolls_back_after_its_timeout(nc: NetconfdServer) -> None:
    device = _device(nc)
    session = _commit_confirmed(device, "true", CONFIRM_S)
    try:
        assert _eventually(lambda: _enabled(device), "false", CONFIRM_S + PROMPT_S) == "false"
    finally:
        session.drop()


class RunningConfigTelemetry:
    """A stub Telemetry for the netconfd device, which has no operational state.

    netconfd serves configuration only (no instrumentation), so there is nothing
    to poll: this reads the running configuration over NETCONF and reports an
    interface as admin and oper up when it is enabled there, with traffic when
    up. Only verification's telemetry is stubbed, and only for this device;
    the change itself goes over real NETCONF to netconfd.
    """

    def __init__(self, device: Device) -> None:
        self.device = device

    async def read(self, device: Device) -> dict[tuple[str, str], float]:
        assert device.name == self.device.name
        up = await asyncio.to_thread(_enabled, device) == "true"
        return {
            ("sys_uptime_s", ""): 1.0,
            ("if_admin_up", "eth1"): float(up),
            ("if_oper_up", "eth1"): float(up),
            ("if_in_bps", "eth1"): 1e6 if up else 0.0,
        }


class _NoSnmp:
    async def walk(self, device: Device, root_oids: Any) -> dict[str, Any]:
        raise AssertionError("the netconfd device has no SNMP")

    async def get(self, device: Device, oids: Any) -> dict[str, Any]:
        raise AssertionError("the netconfd device has no SNMP")

    async def set(self, device: Device, oid: str, value: int, *, write: bool = True) -> None:
        raise AssertionError("the netconfd device has no SNMP")


class _Lock:
    @contextmanager
    def hold(self, device: str, owner: str) -> Iterator[None]:
        yield


def test_a_playbook_runs_through_the_engine_against_netconfd(
    nc: NetconfdServer, tmp_path: Path
) -> None:
    """interface-enable: commit confirmed, verify, confirm; then the engine's rollback."""
    device = _device(nc)
    extra = tmp_path / "platforms"
    extra.mkdir()
    (extra / "netconfd-test.yaml").write_text(PLATFORM)
    settings = Settings.load(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    db = make_engine(settings)
    upgrade(db)
    try:
        engine = PlaybookEngine(
            catalog=Catalog.load(),
            platforms=Platforms.load(PLATFORMS_DIR, extra),
            inventory=Inventory(devices=(device,)),
            snmp=_NoSnmp(),
            telemetry=lambda: RunningConfigTelemetry(device),
            lock=_Lock(),
            audit=AuditLog(db),
            journal=RunJournal(db),
            archive=ConfigArchive(db),
            tickets=TicketBook(db),
        )
        plan = engine.plan("interface-enable", "nc1", "eth1", {"verify_within_s": 10})

        dry = asyncio.run(engine.dry_run(plan))
        assert dry.diff == [
            "/at:interfaces/at:interface[name=eth1]/at:config/at:enabled: false → true"
        ]
        assert _enabled(device) == "false"

        result = asyncio.run(engine.apply(plan, run_id="nc-1"))
        assert result.ok and result.changed, result
        assert [s.name for s in result.steps if "commit" in s.name or s.name == "confirm"] == [
            "commit confirmed",
            "confirm",
        ]
        # Confirmed: it outlives the confirm timeout the engine asked for (10 + 30 s would be
        # long to wait; the confirming <commit/> is what the step list above shows).
        assert _enabled(device) == "true"
        record = RunJournal(db).get("nc-1")
        assert record is not None and record.state is RunState.DONE
        assert ConfigArchive(db).last_good("nc1") is not None

        again = asyncio.run(engine.apply(plan, run_id="nc-2"))
        assert again.ok and not again.changed

        asyncio.run(engine.rollback(plan, "nc-1"))
        assert _enabled(device) == "false"
    finally:
        db.dispose()
