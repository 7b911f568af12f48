"""Lab faults end to end, CI-sized: the metro-ring lab served over SNMP and NETCONF, polled by
the real collectors into a SQLite history, a robust z-score trained per device on the healthy
polls, the detection service scoring what follows. Each fault kind is flagged within two poll
intervals of its injection, the loudest anomaly of that poll names the faulty component first,
and the healthy polls before it raise nothing.

The full sweep over every fault kind is ``python -m bench.detect_faults``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench.detect_faults import EXPECTED, LabFaultConfig, location_name, run_fault
from lab.faults import FaultKind

pytestmark = pytest.mark.timeout(120)

# One fault per layer: a router port, the optical line, a router as a whole. With each, the
# metrics that may lead the attribution of the first anomaly on an expected location.
CASES = [
    (FaultKind.CRC_ERRORS, {"if_in_errors_ps"}),
    (
        FaultKind.SPAN_LOSS,
        {
            "amp_input_power_dbm",
            "amp_pump_current_ma",
            "amp_output_power_dbm",
            "amp_gain_db",
            "roadm_input_power_dbm",
            "opt_rx_power_dbm",
            "opt_osnr_db",
            "opt_pre_fec_ber",
            "opt_q_db",
        },
    ),
    (FaultKind.CPU_RUNAWAY, {"cpu_util_pct", "mem_used_pct"}),
    # The dead port, not the backup port its traffic moves to (models/attribution.py).
    (FaultKind.LINK_DOWN, {"if_oper_up", "if_in_bps", "if_out_bps", "if_in_pps", "if_out_pps"}),
]


@pytest.mark.parametrize(("kind", "metrics"), CASES, ids=[k.value for k, _ in CASES])
def test_a_lab_fault_is_flagged_on_its_component_within_two_polls(
    kind: FaultKind, metrics: set[str], tmp_path: Path
) -> None:
    config = LabFaultConfig(
        kind=kind,
        speed=20.0,
        interval=0.5,  # 10 s of lab time per poll, the optics cadence in production
        train_polls=30,
        healthy_polls=4,
        fault_polls=2,
        seed=7,
    )
    (result,) = asyncio.run(run_fault(config, tmp_path))

    assert result.devices_trained == 34  # every lab device got its own model
    assert result.poll_failures == 0
    assert result.healthy_polls == 4 and result.false_alarms == 0, result.false_alarm_devices
    assert result.detected, f"{kind.value} not flagged in {result.fault_polls} polls"
    assert result.polls_to_first is not None and result.polls_to_first <= 2
    top = location_name(result.top_device or "", result.top_component or "")
    expected = [location_name(*loc) for loc in EXPECTED[kind].locations]
    assert result.top_ok, f"{kind.value}: the loudest anomaly names {top}, not one of {expected}"
    assert result.polls_to_expected == result.polls_to_first
    assert result.expected_metric in metrics, result.expected_metric
