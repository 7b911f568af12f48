"""Link and BGP changes in the lab arrive as SNMPv2c traps, from the device's own port."""

from __future__ import annotations

import socket
import time

from autonoc.core import ber
from lab.network import LabNetwork
from lab.runner import LabRunner
from lab.snmp.agent import BGP_BACKWARD_TRANSITION, LINK_DOWN, LINK_UP


def _receive(
    sock: socket.socket, want: int, timeout: float = 10.0
) -> list[tuple[int, ber.Message]]:
    got: list[tuple[int, ber.Message]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data, (_, port) = sock.recvfrom(65535)
        except TimeoutError:
            break
        got.append((port, ber.decode_message(data)))
    return got


def _trap_oid(msg: ber.Message) -> tuple[int, ...]:
    (name, (_, value)) = msg.varbinds[1][0], msg.varbinds[1][1]
    assert name == ber.SNMP_TRAP_OID_0
    return tuple(value)  # type: ignore[arg-type]


def test_admin_down_sends_link_and_bgp_traps_from_both_ends() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        target = receiver.getsockname()
        network = LabNetwork.preset("ring4")
        with LabRunner(network, community="pub", write_community="priv", trap_target=target) as lab:
            network.set_admin_status("pe1", "eth1", up=False)
            traps = _receive(receiver, 4)
            by_port = {port: name for name, port in lab.ports.items()}
            seen = {(by_port[port], _trap_oid(msg)) for port, msg in traps}
            assert ("pe1", LINK_DOWN) in seen and ("p1", LINK_DOWN) in seen
            assert ("pe1", BGP_BACKWARD_TRANSITION) in seen
            for _, msg in traps:
                assert msg.pdu_type == ber.TRAP_V2 and msg.community == b"pub"
            link_down = next(
                m for p, m in traps if by_port[p] == "pe1" and _trap_oid(m) == LINK_DOWN
            )
            # ifIndex, ifAdminStatus, ifOperStatus of pe1:eth1 (ifIndex 2: lo0 is 1)
            assert [(oid[-2:], v) for oid, v in link_down.varbinds[2:]] == [
                ((1, 2), (ber.INTEGER, 2)),
                ((7, 2), (ber.INTEGER, 2)),
                ((8, 2), (ber.INTEGER, 2)),
            ]

            network.set_admin_status("pe1", "eth1", up=True)
            ups = _receive(receiver, 4)
            assert ("pe1", LINK_UP) in {(by_port[p], _trap_oid(m)) for p, m in ups}
            deadline = time.monotonic() + 5  # the counter moves after each send returns
            while lab.stats["traps_sent"] < 8 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert lab.stats["traps_sent"] >= 8
