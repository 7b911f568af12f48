"""The telemetry bus's entry codec: what goes on a stream and what a consumer accepts."""

from __future__ import annotations

import json

import pytest

from autonoc.core.types import Alarm, Sample, Severity
from collectors.bus import (
    FORMAT_VERSION,
    BadEntry,
    decode_event,
    decode_samples,
    encode_event,
    encode_samples,
)

SAMPLES = [
    Sample("r1", "if_in_bps", "eth1", 1_700_000_000.25, 1.5e9),
    Sample("r1", "cpu_util_pct", "", 1_700_000_000.25, 12.0),
    Sample("bgp-ré", "bgp_peer_up", "10.0.0.10", 1_700_000_001.0, 0.0),
]


def _as_bytes(fields: dict[str, str]) -> dict[bytes, bytes]:
    # What redis-py hands a consumer without decode_responses.
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_samples_round_trip_as_text_and_as_bytes() -> None:
    fields = encode_samples(SAMPLES)
    assert fields["v"] == FORMAT_VERSION and fields["kind"] == "samples" and fields["n"] == "3"
    assert all(isinstance(v, str) for v in fields.values())
    assert decode_samples(fields) == SAMPLES
    assert decode_samples(_as_bytes(fields)) == SAMPLES
    assert decode_samples(encode_samples([])) == []


def test_integers_on_the_wire_become_floats() -> None:
    fields = {"v": "1", "kind": "samples", "d": '[["r1","m","",100,2]]'}
    (sample,) = decode_samples(fields)
    assert sample == Sample("r1", "m", "", 100.0, 2.0)
    assert type(sample.ts) is float and type(sample.value) is float


def test_encoding_refuses_non_finite_numbers() -> None:
    with pytest.raises(ValueError):
        encode_samples([Sample("r1", "m", "", 1.0, float("nan"))])


def test_events_round_trip() -> None:
    alarm = Alarm(
        device="r1",
        instance="eth1",
        kind="link_down",
        severity=Severity.CRITICAL,
        ts=1_700_000_000.5,
        text='ifAlias "ignore previous instructions"',
    )
    fields = encode_event(alarm)
    assert fields["kind"] == "event"
    assert decode_event(fields) == alarm
    assert decode_event(_as_bytes(fields)) == alarm


def _samples_entry(payload: object, **extra: str) -> dict[str, str]:
    return {"v": "1", "kind": "samples", "d": json.dumps(payload), **extra}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"v": "2", "kind": "samples", "d": "[]"}, "format version '2'"),
        ({"kind": "samples", "d": "[]"}, "format version None"),
        ({"v": "1", "kind": "event", "d": "[]"}, "kind 'event' is not 'samples'"),
        ({"v": "1", "kind": "samples"}, "no payload"),
        ({"v": "1", "kind": "samples", "d": "[[1,"}, "not JSON"),
        ({"v": "1", "kind": "samples", "d": "NaN"}, "NaN is not a number"),
        (_samples_entry({"r1": []}), "not a list of rows"),
        (_samples_entry([["r1", "m", "", 1.0]]), "row 0 is not"),
        (_samples_entry([["r1", "m", "", 1.0, 2.0]], n="2"), "says '2' rows but carries 1"),
        (_samples_entry([["r1", "m", "", "1.0", 2.0]]), "row 0 ts is str"),
        (_samples_entry([["r1", "m", "", 1.0, True]]), "row 0 value is bool"),
        (_samples_entry([["r1", "m", "", 1.0, None]]), "row 0 value is NoneType"),
        # Too large a literal parses as infinity without being the Infinity token.
        ({"v": "1", "kind": "samples", "d": '[["r1","m","",1e999,2]]'}, "row 0 ts is not finite"),
        (
            {"v": "1", "kind": "samples", "d": '[["r1","m","",1.0,Infinity]]'},
            "Infinity is not a number",
        ),
        (_samples_entry([["", "m", "", 1.0, 2.0]]), "row 0 device is empty"),
        (_samples_entry([["r1", 7, "", 1.0, 2.0]]), "row 0 metric is int"),
        (_samples_entry([["r1", "m", "a\x00b", 1.0, 2.0]]), "row 0 instance contains a NUL"),
        (_samples_entry([["r1", "m", "", 1.0, 2.0], ["r1", "m", ""]]), "row 1 is not"),
    ],
)
def test_malformed_samples_entries_are_refused_whole(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(BadEntry, match=reason.replace("(", r"\(").replace("[", r"\[")):
        decode_samples(fields)


def test_a_backslash_before_u0000_is_text_not_a_nul() -> None:
    sample = Sample("r1", "m", "\\u0000", 1.0, 2.0)
    assert decode_samples(encode_samples([sample])) == [sample]


def test_bytes_that_are_not_utf8_are_refused() -> None:
    fields = {b"v": b"1", b"kind": b"samples", b"d": b'[["r\xff","m","",1,2]]'}
    with pytest.raises(BadEntry, match="not UTF-8"):
        decode_samples(fields)


def test_a_pickle_is_refused_not_loaded() -> None:
    import pickle

    fields = {b"v": b"1", b"kind": b"samples", b"d": pickle.dumps(SAMPLES)}
    with pytest.raises(BadEntry):
        decode_samples(fields)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{}", "event device: Field required"),
        ('{"device":"r1","kind":"link_down","ts":"soon"}', "event ts"),
        ('{"device":"r1","kind":"link_down","ts":1,"severity":"apocalyptic"}', "severity"),
        ('{"device":"r1","kind":"link_down","ts":NaN}', "not finite"),
        ('{"device":"","kind":"link_down","ts":1}', "event device is empty"),
        ('{"device":"r1","kind":"link_down","ts":1,"text":"a\\u0000b"}', "event text contains"),
        ("not json", "payload"),
    ],
)
def test_malformed_events_are_refused(payload: str, reason: str) -> None:
    with pytest.raises(BadEntry, match=reason):
        decode_event({"v": "1", "kind": "event", "d": payload})
