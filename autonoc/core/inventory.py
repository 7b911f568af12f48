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
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "Device",
    "Endpoint",
    "Inventory",
    "Link",
    "LinkKind",
    "Mgmt",
    "NetconfCredentials",
    "Role",
    "SnmpCredentials",
    "SnmpV2c",
    "SnmpV3",
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

    def other_end(self, device: str, port: str) -> Endpoint | None:
        """The endpoint facing ``device:port`` across this link, if it is one end."""
        if (self.a.device, self.a.port) == (device, port):
            return self.b
        if (self.b.device, self.b.port) == (device, port):
            return self.a
        return None


class Inventory(_Strict):
    devices: tuple[Device, ...] = ()
    links: tuple[Link, ...] = ()

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
