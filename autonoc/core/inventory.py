"""The inventory schema: devices, their management access, and links.

Inventory is data, not settings. These pydantic models are the trust
boundary for ``inventory.yaml``; loading (with file/line/field errors) and
importers live in :mod:`collectors.inventory`.

Example::

    devices:
      - name: pe1
        role: router
        vendor: autonoc-lab
        platform: lab-router
        site: lab
        mgmt: {host: 127.0.0.1, snmp_port: 16101}
        snmp: {version: v2c, community: s3cret}
        tags: [pe]
    links:
      - kind: ip
        a: {device: pe1, port: eth1}
        b: {device: pe2, port: eth1}

The optional sections below describe the layers under and over the IP links,
so that agents can tell what rides on what (the lab writes them; a NetBox or
containerlab import leaves them empty)::

    links:
      - {kind: ip, a: {device: p1, port: eth1}, b: {device: p2, port: eth1}, wavelength: och-1}
    spans:        # one direction of a fibre pair, amplified at its far end
      - {name: span:roadm-a:roadm-b, a: {device: roadm-a, port: deg-1},
         b: {device: roadm-b, port: deg-1}, amplifier: amp-a-b, length_km: 71.2}
    wavelengths:  # a channel between two transponder line ports, over spans
      - {name: och-1, a: {device: xp-a1, port: line1}, b: {device: xp-c1, port: line1},
         path: [span:roadm-a:roadm-b, span:roadm-b:roadm-c],
         path_back: [span:roadm-c:roadm-b, span:roadm-b:roadm-a]}
    bgp_sessions: # one per router and neighbour address, over the link on ``port``
      - {device: pe1, port: eth1, local_address: 10.0.0.9, peer_address: 10.0.0.10,
         peer_device: p1}
    services:     # traffic demands between edge routers, carried over IP paths
      - {name: pe1->pe2, src: pe1, dst: pe2, gbps: 9.7}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "BgpSession",
    "Device",
    "Endpoint",
    "Inventory",
    "Link",
    "LinkKind",
    "Mgmt",
    "NetconfCredentials",
    "Role",
    "Service",
    "SnmpCredentials",
    "SnmpV2c",
    "SnmpV3",
    "Span",
    "Wavelength",
]

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]


class Role(StrEnum):
    ROUTER = "router"
    SWITCH = "switch"
    TRANSPONDER = "transponder"
    ROADM = "roadm"
    AMPLIFIER = "amplifier"


class LinkKind(StrEnum):
    IP = "ip"
    FIBER = "fiber"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mgmt(_Strict):
    """How to reach a device's management plane."""

    host: str = Field(min_length=1)
    snmp_port: int = Field(161, ge=1, le=65535)
    netconf_port: int = Field(830, ge=1, le=65535)


class SnmpV2c(_Strict):
    version: Literal["v1", "v2c"] = "v2c"
    community: SecretStr
    write_community: SecretStr | None = Field(
        None, description="community for SETs; the read community when unset"
    )


class SnmpV3(_Strict):
    version: Literal["v3"]
    user: str = Field(min_length=1)
    auth_protocol: Literal["sha", "sha224", "sha256", "sha384", "sha512", "md5"] | None = None
    auth_key: SecretStr | None = None
    priv_protocol: Literal["aes", "aes192", "aes256", "des"] | None = None
    priv_key: SecretStr | None = None

    @model_validator(mode="after")
    def _keys_match_protocols(self) -> SnmpV3:
        if (self.auth_protocol is None) != (self.auth_key is None):
            raise ValueError("auth_protocol and auth_key must be set together")
        if (self.priv_protocol is None) != (self.priv_key is None):
            raise ValueError("priv_protocol and priv_key must be set together")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError("privacy (priv_protocol) needs authentication (auth_protocol)")
        return self


SnmpCredentials = Annotated[SnmpV2c | SnmpV3, Field(discriminator="version")]


class NetconfCredentials(_Strict):
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    key_file: str | None = None
    hostkey_verify: bool = True

    @model_validator(mode="after")
    def _one_secret(self) -> NetconfCredentials:
        if self.password is None and self.key_file is None:
            raise ValueError("set password or key_file")
        return self


class Device(_Strict):
    name: Name
    role: Role
    vendor: str = "unknown"
    platform: str = "unknown"
    site: str = "default"
    mgmt: Mgmt
    snmp: SnmpCredentials | None = None
    netconf: NetconfCredentials | None = None
    tags: tuple[str, ...] = ()


class Endpoint(_Strict):
    device: Name
    port: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.device}:{self.port}"


class Link(_Strict):
    kind: LinkKind = LinkKind.IP
    a: Endpoint
    b: Endpoint
    wavelength: str | None = Field(
        None, description="the wavelength (``wavelengths[].name``) this IP link rides, if any"
    )

    def other_end(self, device: str, port: str) -> Endpoint | None:
        """The endpoint facing ``device:port`` across this link, if it is one end."""
        if (self.a.device, self.a.port) == (device, port):
            return self.b
        if (self.b.device, self.b.port) == (device, port):
            return self.a
        return None


class Span(_Strict):
    """One direction of a fibre pair: light leaves ROADM degree ``a`` and reaches ``b``.

    ``amplifier`` is the EDFA at the far (``b``) end that makes up the span's loss.
    """

    name: str = Field(min_length=1, max_length=128)
    a: Endpoint
    b: Endpoint
    amplifier: Name | None = None
    length_km: float | None = Field(None, gt=0)


class Wavelength(_Strict):
    """An optical channel between two transponder line ports.

    ``path`` lists the spans its light crosses from ``a`` to ``b``, ``path_back``
    those from ``b`` to ``a``; ``protection``/``protection_back`` the same for its
    1:1 protection path, if it has one. ``active_protection`` says it runs on that
    path now (as at the time the inventory was written).
    """

    name: str = Field(min_length=1, max_length=128)
    a: Endpoint
    b: Endpoint
    path: tuple[str, ...] = Field(min_length=1)
    path_back: tuple[str, ...] = ()
    protection: tuple[str, ...] = ()
    protection_back: tuple[str, ...] = ()
    active_protection: bool = False


class BgpSession(_Strict):
    """A BGP session as one router sees it: to ``peer_address`` over its ``port``."""

    device: Name
    port: str = Field(min_length=1)
    local_address: str = ""
    peer_address: str = Field(min_length=1)
    peer_device: Name | None = None


class Service(_Strict):
    """A traffic demand between two edge routers, carried over IP paths."""

    name: str = Field(min_length=1, max_length=128)
    src: Name
    dst: Name
    gbps: float | None = Field(None, ge=0)


class Inventory(_Strict):
    devices: tuple[Device, ...] = ()
    links: tuple[Link, ...] = ()
    spans: tuple[Span, ...] = ()
    wavelengths: tuple[Wavelength, ...] = ()
    bgp_sessions: tuple[BgpSession, ...] = ()
    services: tuple[Service, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Inventory:
        seen: set[str] = set()
        for device in self.devices:
            if device.name in seen:
                raise ValueError(f"device name {device.name!r} appears twice")
            seen.add(device.name)
        for link in self.links:
            for end in (link.a, link.b):
                if end.device not in seen:
                    raise ValueError(f"link endpoint {end} names an unknown device")
        spans = {span.name for span in self.spans}
        if len(spans) != len(self.spans):
            raise ValueError("a span name appears twice")
        for span in self.spans:
            for end in (span.a, span.b):
                if end.device not in seen:
                    raise ValueError(f"span {span.name!r} endpoint {end} names an unknown device")
            if span.amplifier is not None and span.amplifier not in seen:
                raise ValueError(f"span {span.name!r} names an unknown amplifier device")
        waves = {w.name for w in self.wavelengths}
        if len(waves) != len(self.wavelengths):
            raise ValueError("a wavelength name appears twice")
        for wave in self.wavelengths:
            for end in (wave.a, wave.b):
                if end.device not in seen:
                    raise ValueError(f"wavelength {wave.name!r} end {end} names an unknown device")
            hops = (*wave.path, *wave.path_back, *wave.protection, *wave.protection_back)
            for hop in hops:
                if hop not in spans:
                    raise ValueError(
                        f"wavelength {wave.name!r} crosses span {hop!r}, which spans: lacks"
                    )
        for link in self.links:
            if link.wavelength is not None and link.wavelength not in waves:
                raise ValueError(
                    f"link {link.a}-{link.b} rides wavelength {link.wavelength!r}, "
                    "which wavelengths: lacks"
                )
        for session in self.bgp_sessions:
            for name in (session.device, session.peer_device):
                if name is not None and name not in seen:
                    raise ValueError(
                        f"bgp session {session.device} -> {session.peer_address} names "
                        f"unknown device {name!r}"
                    )
        for service in self.services:
            for name in (service.src, service.dst):
                if name not in seen:
                    raise ValueError(f"service {service.name!r} names unknown device {name!r}")
        return self

    def device(self, name: str) -> Device:
        """The device called ``name``; KeyError when there is none."""
        for device in self.devices:
            if device.name == name:
                return device
        raise KeyError(name)

    def peer(self, device: str, port: str) -> Endpoint | None:
        """The far end of the link on ``device:port``, if any."""
        for link in self.links:
            end = link.other_end(device, port)
            if end is not None:
                return end
        return None
