"""The policy gate's file: kill switch, autonomy by fault kind, windows, maintenance,
blast radius, per-site rate limits, and errors that name the file, line and field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.policy import BlastRadius, Outcome, PolicyDocument, PolicyGate, load_policy
from autonoc.core.errors import ConfigError
from autonoc.core.settings import Autonomy, PolicySettings
from autonoc.core.types import ActionPlan
from playbooks.base import Catalog, PlaybookSpec

PLAYBOOK = "interface-enable"
# A Wednesday, 12:00 UTC.
NOON_WED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def spec() -> PlaybookSpec:
    return Catalog.load().get(PLAYBOOK)


def _plan(device: str = "pe1") -> ActionPlan:
    return ActionPlan(
        playbook=PLAYBOOK,
        device=device,
        target="eth1",
        params={"interface": "eth1", "min_traffic_bps": 1000.0, "verify_within_s": 20.0},
    )


def _gate(text: str, tmp_path: Path, **kw: object) -> PolicyGate:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return PolicyGate(PolicySettings(file=path), clock=lambda: NOON_WED, **kw)  # type: ignore[arg-type]


AUTO = "autonomy: {playbooks: {interface-enable: auto}}\n"


def test_an_empty_policy_keeps_the_catalog_default(spec: PlaybookSpec) -> None:
    gate = PolicyGate(PolicySettings(), document=PolicyDocument())
    decision = gate.decide(_plan(), spec)
    assert decision.outcome is Outcome.NEEDS_APPROVAL
    assert any("catalog default" in r for r in decision.reasons)


def test_the_file_raises_a_playbook_to_auto(spec: PlaybookSpec, tmp_path: Path) -> None:
    decision = _gate(AUTO, tmp_path).decide(_plan(), spec)
    assert decision.outcome is Outcome.RUN
    assert "policy file" in decision.reason


def test_the_kill_switch_stops_everything(spec: PlaybookSpec, tmp_path: Path) -> None:
    decision = _gate(AUTO + "kill_switch: true\n", tmp_path).decide(_plan(), spec)
    assert decision.outcome is Outcome.DENY and "kill switch" in decision.reason


def test_a_fault_kind_can_only_make_it_stricter(spec: PlaybookSpec, tmp_path: Path) -> None:
    gate = _gate(
        "autonomy:\n  playbooks: {interface-enable: auto}\n"
        "  fault_kinds: {interface_admin_down: approve, link_down: auto}\n",
        tmp_path,
    )
    assert gate.decide(_plan(), spec, fault_kind="interface_admin_down").outcome is (
        Outcome.NEEDS_APPROVAL
    )
    assert gate.decide(_plan(), spec, fault_kind="link_down").outcome is Outcome.RUN
    lowered = _gate("autonomy: {fault_kinds: {link_down: auto}}\n", tmp_path)
    assert lowered.decide(_plan(), spec, fault_kind="link_down").outcome is Outcome.NEEDS_APPROVAL


def test_outside_a_change_window_auto_waits_for_approval(
    spec: PlaybookSpec, tmp_path: Path
) -> None:
    night = AUTO + 'change_windows: [{days: [wed], start: "22:00", end: "06:00"}]\n'
    decision = _gate(night, tmp_path).decide(_plan(), spec)
    assert decision.outcome is Outcome.NEEDS_APPROVAL and "change window" in decision.reason
    day = AUTO + 'change_windows: [{days: [wed], start: "09:00", end: "17:00"}]\n'
    assert _gate(day, tmp_path).decide(_plan(), spec).outcome is Outcome.RUN


def test_a_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    from agents.policy import ChangeWindow

    window = ChangeWindow.model_validate({"days": ["tue"], "start": "22:00", "end": "06:00"})
    assert window.contains(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))  # Wed 03:00
    assert not window.contains(datetime(2026, 11, 26, 3, 0, tzinfo=UTC))  # Thu 03:00
    assert window.contains(datetime(2026, 11, 24, 23, 0, tzinfo=UTC))  # Tue 23:00


def test_maintenance_denies_by_device_and_by_site(spec: PlaybookSpec, tmp_path: Path) -> None:
    text = AUTO + (
        "maintenance:\n"
        "  - {devices: [pe1], start: 2026-11-25T10:00:00Z, end: 2026-11-25T14:00:00Z,"
        " reason: optic swap}\n"
        "  - {sites: [b], start: 2026-11-25T10:00:00Z, end: 2026-11-25T14:00:00Z}\n"
    )
    gate = _gate(text, tmp_path, site_of=lambda d: {"p1": "b"}.get(d, "a"))
    denied = gate.decide(_plan("pe1"), spec)
    assert denied.outcome is Outcome.DENY and "optic swap" in denied.reason
    assert gate.decide(_plan("p1"), spec).outcome is Outcome.DENY
    assert gate.decide(_plan("pe2"), spec).outcome is Outcome.RUN
    assert gate.in_maintenance("pe1") and not gate.in_maintenance("pe2")


def test_blast_radius_needs_approval_then_denies(spec: PlaybookSpec, tmp_path: Path) -> None:
    text = AUTO + (
        "blast_radius:\n"
        "  approve_above: {devices: 2, services: 1}\n"
        "  deny_above: {devices: 4, services: 10}\n"
    )

    def radius(devices: int, services: int) -> BlastRadius:
        return BlastRadius(
            devices=frozenset(f"d{i}" for i in range(devices)),
            services=frozenset(f"s{i}" for i in range(services)),
        )

    small = _gate(text, tmp_path, blast=lambda plan: radius(2, 1)).decide(_plan(), spec)
    assert small.outcome is Outcome.RUN
    medium = _gate(text, tmp_path, blast=lambda plan: radius(3, 1)).decide(_plan(), spec)
    assert medium.outcome is Outcome.NEEDS_APPROVAL
    large = _gate(text, tmp_path, blast=lambda plan: radius(2, 11)).decide(_plan(), spec)
    assert large.outcome is Outcome.DENY
    assert large.as_dict()["blast_services"] == sorted(f"s{i}" for i in range(11))


def test_per_site_rate_limit(spec: PlaybookSpec, tmp_path: Path) -> None:
    text = AUTO + "rate_limits: {per_device_per_hour: 5, per_site_per_hour: 2}\n"
    gate = _gate(text, tmp_path, site_of=lambda d: "a" if d in ("pe1", "p1") else "c")
    gate.record_dispatch("pe1")
    gate.record_dispatch("p1")
    denied = gate.decide(_plan("pe1"), spec)
    assert denied.outcome is Outcome.DENY and "site a" in denied.reason
    assert gate.decide(_plan("pe2"), spec).outcome is Outcome.RUN


def test_a_bad_policy_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("kill_switch: false\nautonomy:\n  playbooks: {drain-link: sometimes}\n")
    with pytest.raises(ConfigError, match=r"policy.yaml line 3: autonomy.playbooks.drain-link"):
        load_policy(path)
    path.write_text(
        "maintenance:\n  - {devices: [pe1], start: 2026-11-25T10:00:00, end: 2026-11-25T11:00:00}\n"
    )
    with pytest.raises(ConfigError, match="time zone"):
        load_policy(path)


def test_settings_overrides_still_win_over_the_file(spec: PlaybookSpec, tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(AUTO)
    gate = PolicyGate(
        PolicySettings(file=path, autonomy={PLAYBOOK: Autonomy.SUGGEST}), clock=lambda: NOON_WED
    )
    assert gate.decide(_plan(), spec).outcome is Outcome.SUGGEST_ONLY
