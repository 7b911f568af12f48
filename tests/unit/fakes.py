"""Small fakes and builders shared by unit tests."""

from __future__ import annotations

from pydantic import SecretStr

from autonoc.core.inventory import Device, Endpoint, Link, Mgmt, Role, SnmpV2c

T0 = 1_700_000_000.0


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def router(name: str, port: int, role: Role = Role.ROUTER) -> Device:
    """A lab-style device on loopback with a v2c community."""
    return Device(
        name=name,
        role=role,
        vendor="autonoc-lab",
        mgmt=Mgmt(host="127.0.0.1", snmp_port=port),
        snmp=SnmpV2c(community=SecretStr("public")),
    )


def link(a: str, b: str) -> Link:
    """An IP link from ``"dev:port"`` strings."""
    (ad, ap), (bd, bp) = a.split(":"), b.split(":")
    return Link(a=Endpoint(device=ad, port=ap), b=Endpoint(device=bd, port=bp))
