"""Platform data: how each typed action is rendered for a kind of device.

Vendor and platform differences live in YAML (``playbooks/platforms/*.yaml``),
validated here, never in code paths per vendor. A platform file names the
inventory ``platform`` values it serves and, per operation, one or more
renderings in order of preference; the engine takes the first one whose
protocol the device has credentials for::

    name: openconfig
    matches: [lab-router, openconfig]
    namespaces: {oc-if: http://openconfig.net/yang/interfaces}
    ops:
      set_interface_enabled:
        - protocol: netconf
          leaf: /oc-if:interfaces/oc-if:interface[oc-if:name={target}]/oc-if:config/oc-if:enabled
          values: {"true": "true", "false": "false"}
        - protocol: snmp
          oid: 1.3.6.1.2.1.2.2.1.7
          index: ifindex
          values: {"true": 1, "false": 2}

A ``leaf`` is a path of ``prefix:name`` steps with ``[prefix:key=value]``
predicates. ``{target}`` and ``{device}`` in a predicate stand for the plan's
target and device; they are put into XML text by lxml, so no device or ticket
text can ever change the shape of what is sent. The same path gives the edit,
the subtree filter that reads the leaf back, and the reader of the reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from autonoc.core.errors import PlaybookValidationError
from autonoc.core.inventory import Device

__all__ = [
    "NC_BASE",
    "PLATFORMS_DIR",
    "FrrVtysh",
    "LeafPath",
    "NetconfConfig",
    "NetconfLeaf",
    "NetconfRpc",
    "PlatformSpec",
    "Platforms",
    "Rendering",
    "SnmpLeaf",
]

PLATFORMS_DIR = Path(__file__).parent / "platforms"
NC_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"

Element = Any  # an lxml.etree._Element


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetconfLeaf(_Strict):
    """One configuration leaf, edited on the candidate and committed with confirmation."""

    protocol: Literal["netconf"]
    leaf: str
    values: dict[str, str] = Field(default_factory=dict)
    """Typed value (``true``, ``working``, ...) to the leaf's text; empty: the number as text."""


class SnmpLeaf(_Strict):
    """One writable SNMP object indexed by the target interface's ifIndex."""

    protocol: Literal["snmp"]
    oid: str = Field(pattern=r"^1(\.\d+)+$")
    index: Literal["ifindex"] = "ifindex"
    values: dict[str, int]


class NetconfRpc(_Strict):
    """An RPC whose last step's text is the target (a process name, say)."""

    protocol: Literal["netconf-rpc"]
    rpc: str


class NetconfConfig(_Strict):
    """The whole running configuration, replaced on the candidate (restore last known good)."""

    protocol: Literal["netconf-config"]


class FrrVtysh(_Strict):
    """A typed FRR setting written through ``vtysh`` (:mod:`playbooks.frr`).

    Only the setting is named here; the commands are built by code from
    validated values, never from text in this file.
    """

    protocol: Literal["frr-vtysh"]
    setting: Literal["ospf-cost", "bgp-neighbor-enabled", "interface-enabled"]


Rendering = Annotated[
    NetconfLeaf | SnmpLeaf | NetconfRpc | NetconfConfig | FrrVtysh,
    Field(discriminator="protocol"),
]


class PlatformSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    description: str = ""
    matches: tuple[str, ...] = Field(min_length=1)
    namespaces: dict[str, str] = Field(default_factory=dict)
    confirmed_commit: bool = True
    """The device's NETCONF server does candidate + confirmed commit (RFC 6241 8.3, 8.4)."""
    confirm_margin_s: float = Field(60.0, gt=0)
    """Confirm timeout beyond the playbook's own verification time."""
    ops: dict[str, tuple[Rendering, ...]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _paths_parse(self) -> PlatformSpec:
        for op, renderings in self.ops.items():
            for r in renderings:
                path = r.leaf if isinstance(r, NetconfLeaf) else getattr(r, "rpc", None)
                if path is not None:
                    try:
                        LeafPath.parse(path, self.namespaces)
                    except ValueError as exc:
                        raise ValueError(f"ops.{op}: {exc}") from None
        return self

    def renderings(self, op: str) -> tuple[Rendering, ...]:
        return self.ops.get(op, ())

    def path(self, text: str) -> LeafPath:
        return LeafPath.parse(text, self.namespaces)


class Platforms:
    """Every platform file, and which one serves a device."""

    def __init__(self, specs: Mapping[str, PlatformSpec]) -> None:
        self._specs = dict(specs)
        self._by_match: dict[str, PlatformSpec] = {}
        for spec in self._specs.values():
            for value in spec.matches:
                other = self._by_match.get(value)
                if other is not None:
                    raise PlaybookValidationError(
                        f"platform value {value!r} is claimed by both {other.name} and {spec.name}"
                    )
                self._by_match[value] = spec

    @classmethod
    def load(cls, *directories: Path) -> Platforms:
        """Load ``playbooks/platforms`` (or the given directories, in order)."""
        specs: dict[str, PlatformSpec] = {}
        for directory in directories or (PLATFORMS_DIR,):
            for path in sorted(directory.glob("*.yaml")):
                try:
                    spec = PlatformSpec.model_validate(yaml.safe_load(path.read_text("utf-8")))
                except yaml.YAMLError as exc:
                    raise PlaybookValidationError(f"{path}: not valid YAML: {exc}") from exc
                except ValidationError as exc:
                    first = exc.errors()[0]
                    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
                    raise PlaybookValidationError(f"{path}: {field}: {first['msg']}") from exc
                specs[spec.name] = spec
        return cls(specs)

    def for_device(self, device: Device) -> PlatformSpec:
        spec = self._by_match.get(device.platform)
        if spec is None:
            known = ", ".join(sorted(self._by_match))
            raise PlaybookValidationError(
                f"{device.name}: no platform data for platform {device.platform!r} "
                f"(known: {known}); add it to a playbooks/platforms/*.yaml file"
            )
        return spec

    def __iter__(self) -> Iterator[PlatformSpec]:
        return iter(self._specs.values())


# ---- leaf paths -------------------------------------------------------------------

_STEP = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*)(?P<preds>(\[[^\]]+\])*)$")
_PRED = re.compile(r"\[(?P<key>[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*)=(?P<value>[^\]]*)\]")


@dataclass(frozen=True, slots=True)
class _Step:
    ns: str
    local: str
    keys: tuple[tuple[str, str, str], ...]  # (ns, local, value template)


@dataclass(frozen=True, slots=True)
class LeafPath:
    """A keyed path to one leaf (or RPC argument), in Clark names."""

    steps: tuple[_Step, ...]
    nsmap: Mapping[str, str]

    @classmethod
    def parse(cls, text: str, namespaces: Mapping[str, str]) -> LeafPath:
        parts = _split(text)
        if not parts:
            raise ValueError(f"empty path {text!r}")
        steps = []
        for part in parts:
            m = _STEP.match(part)
            if m is None:
                raise ValueError(f"bad step {part!r} in {text!r} (want prefix:name[prefix:key=v])")
            ns, local = _resolve(m["name"], namespaces, text)
            preds = list(_PRED.finditer(m["preds"]))
            if "".join(p.group(0) for p in preds) != m["preds"]:
                # A predicate the pattern skipped would silently widen the path to every entry.
                raise ValueError(f"bad predicate in {part!r} of {text!r} (want [prefix:key=value])")
            keys = tuple((*_resolve(p["key"], namespaces, text), p["value"]) for p in preds)
            steps.append(_Step(ns, local, keys))
        return cls(tuple(steps), dict(namespaces))

    def _value(self, template: str, where: Mapping[str, str]) -> str:
        out = template
        for name, value in where.items():
            out = out.replace("{" + name + "}", value)
        if "{" in out:
            raise PlaybookValidationError(f"unresolved placeholder in path value {template!r}")
        return out

    def _build(self, root: Element, where: Mapping[str, str]) -> Element:
        node = root
        for step in self.steps:
            node = etree.SubElement(node, f"{{{step.ns}}}{step.local}", nsmap=self.nsmap)
            for ns, local, template in step.keys:
                etree.SubElement(node, f"{{{ns}}}{local}").text = self._value(template, where)
        return node

    def edit(
        self, where: Mapping[str, str], value: str | None, *, operation: str | None = None
    ) -> Element:
        """``<config>`` setting the leaf to ``value`` (``None`` with operation ``remove``)."""
        root = etree.Element(f"{{{NC_BASE}}}config", nsmap={"nc": NC_BASE})
        leaf = self._build(root, where)
        if value is not None:
            leaf.text = value
        if operation is not None:
            leaf.set(f"{{{NC_BASE}}}operation", operation)
        return root

    def filter(self, where: Mapping[str, str]) -> Element:
        """A subtree ``<filter>`` selecting just this leaf."""
        root = etree.Element(f"{{{NC_BASE}}}filter", nsmap={"nc": NC_BASE})
        root.set("type", "subtree")
        self._build(root, where)
        return root

    def rpc(self, where: Mapping[str, str], text: str) -> Element:
        """The RPC element, its last step carrying ``text``."""
        holder = etree.Element("holder")
        self._build(holder, where).text = text
        return holder[0]

    def read(self, data: Element, where: Mapping[str, str]) -> str | None:
        """The leaf's text in a ``<data>`` reply, or None when absent."""
        nodes = [data]
        for step in self.steps:
            found = []
            for node in nodes:
                for child in node.iterchildren(f"{{{step.ns}}}{step.local}"):
                    if all(
                        (child.findtext(f"{{{ns}}}{local}") or "").strip()
                        == self._value(template, where)
                        for ns, local, template in step.keys
                    ):
                        found.append(child)
            nodes = found
        return (nodes[0].text or "").strip() if nodes else None

    def describe(self, where: Mapping[str, str]) -> str:
        """The path as a person reads it, placeholders filled."""
        inv = {ns: prefix for prefix, ns in self.nsmap.items()}
        out = []
        for step in self.steps:
            keys = "".join(
                f"[{local}={self._value(template, where)}]" for _ns, local, template in step.keys
            )
            out.append(f"{inv.get(step.ns, '?')}:{step.local}{keys}")
        return "/" + "/".join(out)


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text.strip():
        if ch.isspace() and depth == 0:
            continue  # a folded YAML line break between steps
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "/" and depth == 0:
            if current:
                parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        parts.append("".join(current))
    return parts


def _resolve(name: str, namespaces: Mapping[str, str], text: str) -> tuple[str, str]:
    prefix, local = name.split(":", 1)
    if prefix not in namespaces:
        raise ValueError(f"prefix {prefix!r} in {text!r} is not in namespaces")
    return namespaces[prefix], local
