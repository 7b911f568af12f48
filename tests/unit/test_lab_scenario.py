"""Scenario files and the scenario runner (model only: no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autonoc.core.errors import LabError
from lab.faults import FaultKind
from lab.scenario import Scenario, load_scenario, run_scenario, scenario_files
from playbooks.base import Catalog


def test_one_shipped_scenario_per_fault_kind_and_a_healthy_one() -> None:
    scenarios = [load_scenario(path) for path in scenario_files()]
    kinds = [s.faults[0].kind for s in scenarios if s.faults]
    assert sorted(kinds) == sorted(FaultKind)
    healthy = [s for s in scenarios if not s.faults]
    assert len(healthy) == 1 and healthy[0].expect.remediation == ()
    for s in scenarios:
        if s.faults:
            assert s.expect.root_cause is not None
            assert s.expect.root_cause.kind == s.faults[0].kind


def test_every_expected_remediation_is_a_catalog_playbook_for_that_fault() -> None:
    catalog = Catalog.load()
    for path in scenario_files():
        scenario = load_scenario(path)
        for name in scenario.expect.remediation:
            spec = catalog.get(name)  # raises on a name the catalog does not have
            assert scenario.faults[0].kind.value in spec.fault_kinds, (path.name, name)


def test_every_shipped_fault_target_exists_in_its_topology() -> None:
    for path in scenario_files():
        scenario = load_scenario(path)
        quick = scenario.model_copy(update={"warmup_s": 0.0, "duration_s": 1.0, "speed": 1000.0})
        report = run_scenario(quick, tick_s=1.0)  # raises LabError on a bad target
        assert len(report.faults_at) == len(scenario.faults), path.name


def test_a_bad_scenario_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\n"
        "topology: {preset: metro-ring}\n"
        "duration_s: 100\n"
        "faults:\n"
        "  - at_s: 0\n"
        "    kind: span_loss\n"
        "    target: span:roadm-a:roadm-b\n"
        "    params: {extra_dbb: 3}\n"
    )
    with pytest.raises(LabError, match=r"bad.yaml line 5: faults.0: .*extra_dbb"):
        load_scenario(path)
    path.write_text("name: x\ntopology: {preset: nope}\nduration_s: 10\n")
    with pytest.raises(LabError, match=r"line 2: topology: .*unknown preset"):
        load_scenario(path)


def test_fibre_cut_scenario_records_the_ground_truth_timeline() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "cut",
            "topology": {"preset": "metro-ring"},
            "speed": 2000,
            "warmup_s": 60,
            "duration_s": 400,
            "faults": [
                {
                    "at_s": 20,
                    "kind": "fiber_cut",
                    "target": "span:roadm-a:roadm-b",
                    "clear_at_s": 200,
                }
            ],
        }
    )
    report = run_scenario(scenario, tick_s=5.0)
    whats = [e.what for e in report.timeline]
    assert whats.count("fault_injected") == 1 and whats.count("fault_cleared") == 1
    injected = next(e for e in report.timeline if e.what == "fault_injected")
    assert injected.t == pytest.approx(80.0)
    downs = [e for e in report.timeline if e.what == "link_down"]
    assert {e.detail["device"] for e in downs} == {"p1", "p2", "pe2", "pe3"}
    assert all(80.0 <= e.t < 90.0 for e in downs)
    # BGP on the cut links is down until the clear, then everything is healthy again.
    assert report.unhealthy_s >= 150.0
    assert report.healthy_at_end and report.recovered_at is not None
    assert report.recovered_at >= 260.0
    assert report.as_dict()["scenario"] == "cut"


def test_config_fault_mitigated_by_a_config_fix_is_reported_so() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "bgp",
            "topology": {"preset": "metro-ring"},
            "speed": 2000,
            "duration_s": 100,
            "faults": [{"at_s": 10, "kind": "bgp_session_down", "target": "bgp:pe1:10.0.0.10"}],
        }
    )

    class Fixer:
        def on_start(self, ctx: object) -> None:
            pass

        def on_tick(self, ctx: object) -> None:
            network = ctx.network  # type: ignore[attr-defined]
            if ctx.elapsed() > 50:  # type: ignore[attr-defined]
                network.set_bgp_neighbor("pe1", "10.0.0.10", True)

        def on_end(self, ctx: object, report: object) -> None:
            pass

    report = run_scenario(scenario, hooks=[Fixer()], tick_s=5.0)
    assert [e.what for e in report.timeline].count("fault_mitigated") == 1
    assert report.healthy_at_end
