"""Load, import and write inventories, with errors that name the file, line and field.

:func:`load_inventory` reads ``inventory.yaml`` into
:class:`autonoc.core.inventory.Inventory`; every problem it finds comes back
in one :class:`~autonoc.core.errors.InventoryError` as
``(line, "devices[1].mgmt.host", message)``, so an operator fixes them all in
one pass. :func:`import_containerlab` builds an inventory from the
``topology-data.json`` that ``containerlab deploy`` writes, and
:func:`dump_inventory` writes one back out, atomically, secrets redacted.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from autonoc.core.errors import InventoryError
from autonoc.core.inventory import (
    Device,
    Endpoint,
    Inventory,
    Link,
    LinkKind,
    Mgmt,
    NetconfCredentials,
    Role,
    SnmpV2c,
)

__all__ = ["REDACTED", "dump_inventory", "import_containerlab", "load_inventory"]

#: What :func:`dump_inventory` writes in place of a secret.
REDACTED = "<redacted>"

Problem = tuple[int | None, str, str]
Loc = tuple[int | str, ...]

# Fields whose inputs may hold credentials: pydantic errors under them never
# echo the offending value.
_SECRET_SECTIONS = frozenset({"snmp", "netconf"})


# ---------------------------------------------------------------------------
# load_inventory


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory YAML file.

    Raises:
        InventoryError: the file is missing, unreadable, not YAML, or not a
            valid inventory; it lists every problem with its line and field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(
            path, [(None, "", "no such file (create it, or point AUTONOC_INVENTORY at one)")]
        ) from None
    except UnicodeDecodeError as exc:
        raise InventoryError(
            path, [(None, "", f"not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8")]
        ) from None
    except OSError as exc:
        raise InventoryError(path, [(None, "", f"cannot read: {exc.strerror or exc}")]) from exc

    root, data = _parse_yaml(path, text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else None
        kind = type(data).__name__
        raise InventoryError(
            path,
            [
                (
                    line,
                    "",
                    f"the top level is a {kind}; it must be a mapping with 'devices:' and 'links:'",
                )
            ],
        )

    problems = _duplicate_keys(root) if root is not None else []
    consistency = _consistency_problems(root, data)
    try:
        inventory = Inventory.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(err["loc"])
            if not loc:
                # Model-level checks (duplicate names, unknown link ends):
                # ours point at the exact node, pydantic's only at the file.
                if not consistency:
                    problems.append((_locate(root, ())[0], "", _message(err)))
                continue
            line, field = _locate(root, loc)
            problems.append((line, field, _message(err)))
    else:
        if not problems and not consistency:
            return inventory
    problems.extend(consistency)
    problems.sort(key=lambda p: (p[0] if p[0] is not None else 0, p[1]))
    raise InventoryError(path, problems)


def _parse_yaml(path: Path, text: str) -> tuple[yaml.Node | None, Any]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        # Only the parser's description: str(exc) quotes the offending line,
        # which may hold a community.
        what = "; ".join(p for p in (exc.context, exc.problem) if p)
        raise InventoryError(path, [(line, "", f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as exc:
        raise InventoryError(path, [(None, "", f"not valid YAML: {type(exc).__name__}")]) from None
    finally:
        loader.dispose()
    return root, data


def _duplicate_keys(node: yaml.Node, path: Loc = ()) -> list[Problem]:
    """Keys given twice in one mapping: YAML keeps the last one silently."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    problems.append(
                        (
                            key.start_mark.line + 1,
                            _field_path((*path, key.value)),
                            "this key appears twice in the same mapping; keep one",
                        )
                    )
                seen.add(key.value)
                problems.extend(_duplicate_keys(value, (*path, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, (*path, i)))
    return problems


def _consistency_problems(root: yaml.Node | None, data: dict[str, Any]) -> list[Problem]:
    """Duplicate device names and links to unknown devices, located precisely."""
    devices = data.get("devices")
    links = data.get("links")
    problems: list[Problem] = []
    names: dict[str, int] = {}
    if isinstance(devices, list):
        for i, device in enumerate(devices):
            name = device.get("name") if isinstance(device, dict) else None
            if not isinstance(name, str):
                continue
            if name in names:
                problems.append(
                    (
                        *_locate(root, ("devices", i, "name")),
                        f"device name {name!r} appears twice (first at devices[{names[name]}]); "
                        "device names must be unique",
                    )
                )
            else:
                names[name] = i
    if isinstance(links, list) and isinstance(devices, list):
        for i, link in enumerate(links):
            if not isinstance(link, dict):
                continue
            for end in ("a", "b"):
                endpoint = link.get(end)
                device = endpoint.get("device") if isinstance(endpoint, dict) else None
                if isinstance(device, str) and device not in names:
                    problems.append(
                        (
                            *_locate(root, ("links", i, end, "device")),
                            f"link end names unknown device {device!r} (add it under devices:, "
                            "or fix the name)",
                        )
                    )
    return problems


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    secret = any(part in _SECRET_SECTIONS for part in loc)
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling and indentation)"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    value = err.get("input")
    if not secret and isinstance(value, str | int | float | bool) and len(str(value)) <= 80:
        msg = f"{msg} (got {value!r})"
    return msg


def _field_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _locate(root: yaml.Node | None, loc: Loc) -> tuple[int | None, str]:
    """The 1-based line of the YAML node at ``loc`` (or its nearest ancestor) and its path.

    pydantic puts a discriminated union's tag in ``loc`` (``snmp.v2c.community``);
    a part that is no key but a value of the mapping it would index is such a
    tag, and is left out of the path.
    """
    if root is None:
        return None, _field_path(loc)
    node: yaml.Node | None = root
    line = root.start_mark.line + 1
    kept: list[int | str] = []
    for part in loc:
        child = _child(node, part) if node is not None else None
        if child is None:
            if node is not None and _is_tag(node, part):
                continue
            node = None  # a missing field: keep its name, stay on the parent's line
        else:
            line, node = child
        kept.append(part)
    return line, _field_path(tuple(kept))


def _is_tag(node: yaml.Node, part: int | str) -> bool:
    return isinstance(node, yaml.MappingNode) and any(
        isinstance(value, yaml.ScalarNode) and value.value == part for _, value in node.value
    )


def _child(node: yaml.Node, part: int | str) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
        if 0 <= part < len(node.value):
            item = node.value[part]
            return item.start_mark.line + 1, item
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                return key.start_mark.line + 1, value
    return None


# ---------------------------------------------------------------------------
# import_containerlab

_SRL_PORT = re.compile(r"^e(\d+)-(\d+)(?:-(\d+))?$")
# Nodes that are wiring, not devices to poll.
_SKIPPED_KINDS = frozenset({"bridge", "ovs-bridge", "host", "mgmt-net", "macvlan"})


def import_containerlab(
    topology_data: Path,
    *,
    snmp_community: str | None = None,
    netconf: NetconfCredentials | None = None,
) -> Inventory:
    """Build an inventory from containerlab's ``topology-data.json``.

    Each node becomes a device named after its short name, reached at its
    ``mgmt-ipv4-address`` (IPv6 when it has no IPv4), in the site named after
    the lab. SR Linux port names (``e1-1``) become the names the device
    reports over SNMP (``ethernet-1/1``). Bridge nodes and links to them are
    left out.

    Args:
        topology_data: the file in the lab directory (``clab-<lab>/topology-data.json``).
        snmp_community: an SNMPv2c community to give every device.
        netconf: NETCONF credentials to give every device.

    Raises:
        InventoryError: the file is missing, not JSON, or not a containerlab export.
    """
    path = Path(topology_data)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InventoryError(
            path,
            [
                (
                    None,
                    "",
                    "no such file (run 'containerlab deploy' first; it writes "
                    "topology-data.json in the lab directory)",
                )
            ],
        ) from None
    except UnicodeDecodeError as exc:
        raise InventoryError(path, [(None, "", f"not UTF-8 text (offset {exc.start})")]) from None
    except json.JSONDecodeError as exc:
        raise InventoryError(path, [(exc.lineno, "", f"not valid JSON: {exc.msg}")]) from None
    except OSError as exc:
        raise InventoryError(path, [(None, "", f"cannot read: {exc.strerror or exc}")]) from exc

    problems: list[Problem] = []
    if not isinstance(raw, dict) or not isinstance(raw.get("nodes"), dict):
        raise InventoryError(
            path,
            [(None, "nodes", "no 'nodes' mapping: this is not containerlab's topology-data.json")],
        )
    lab = str(raw.get("name") or "clab")
    snmp = SnmpV2c(community=SecretStr(snmp_community)) if snmp_community is not None else None

    devices: list[Device] = []
    platforms: dict[str, str] = {}  # device name -> platform, to map port names
    for name, node in raw["nodes"].items():
        where = f"nodes.{name}"
        if not isinstance(node, dict):
            problems.append((None, where, "must be a mapping"))
            continue
        kind = str(node.get("kind", ""))
        if kind in _SKIPPED_KINDS:
            continue
        vendor, platform = _vendor_platform(kind, str(node.get("image", "")))
        labels = node.get("labels") or {}
        role_label = labels.get("autonoc-role") if isinstance(labels, dict) else None
        try:
            role = Role(role_label) if role_label else Role.ROUTER
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            problems.append(
                (
                    None,
                    f"{where}.labels.autonoc-role",
                    f"unknown role {role_label!r} (use one of: {allowed})",
                )
            )
            continue
        host = node.get("mgmt-ipv4-address") or node.get("mgmt-ipv6-address")
        if not host:
            problems.append(
                (
                    None,
                    f"{where}.mgmt-ipv4-address",
                    "node has no management address (is it deployed with network-mode: none?)",
                )
            )
            continue
        try:
            devices.append(
                Device(
                    name=name,
                    role=role,
                    vendor=vendor,
                    platform=platform,
                    site=lab,
                    mgmt=Mgmt(host=str(host)),
                    snmp=snmp,
                    netconf=netconf,
                    tags=(kind,),
                )
            )
        except ValidationError as exc:
            problems.extend(_model_problems(where, exc))
            continue
        platforms[name] = platform

    links: list[Link] = []
    raw_links = raw.get("links") or []
    if not isinstance(raw_links, list):
        problems.append((None, "links", "must be a list"))
        raw_links = []
    for i, raw_link in enumerate(raw_links):
        ends = _link_ends(raw_link)
        if ends is None:
            problems.append(
                (None, f"links[{i}]", "expected endpoints 'a' and 'z' with 'node' and 'interface'")
            )
            continue
        (a_node, a_port), (z_node, z_port) = ends
        if a_node not in platforms or z_node not in platforms:
            continue  # a link to the host, a bridge or a node skipped above
        try:
            links.append(
                Link(
                    kind=LinkKind.IP,
                    a=Endpoint(device=a_node, port=_port_name(platforms[a_node], a_port)),
                    b=Endpoint(device=z_node, port=_port_name(platforms[z_node], z_port)),
                )
            )
        except ValidationError as exc:
            problems.extend(_model_problems(f"links[{i}]", exc))

    if problems:
        raise InventoryError(path, problems)
    try:
        return Inventory(devices=tuple(devices), links=tuple(links))
    except ValidationError as exc:
        raise InventoryError(path, _model_problems("", exc)) from None


def _vendor_platform(kind: str, image: str) -> tuple[str, str]:
    if kind in ("nokia_srlinux", "srl"):
        return "nokia", "srlinux"
    if kind == "linux" and "frr" in image.lower():
        return "frr", "frr"
    return "unknown", kind or "unknown"


def _link_ends(raw: Any) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """(node, interface) of each end; containerlab ≥0.73 nests them under ``endpoints``."""
    if not isinstance(raw, dict):
        return None
    body = raw.get("endpoints", raw)
    if not isinstance(body, dict):
        return None
    ends: list[tuple[str, str]] = []
    for side in ("a", "z"):
        end = body.get(side)
        if not isinstance(end, dict) or not end.get("node") or not end.get("interface"):
            return None
        ends.append((str(end["node"]), str(end["interface"])))
    return ends[0], ends[1]


def _port_name(platform: str, port: str) -> str:
    """The interface name the device itself reports (its SNMP ifName)."""
    if platform == "srlinux":
        m = _SRL_PORT.match(port)
        if m:
            return "ethernet-" + "/".join(g for g in m.groups() if g is not None)
    return port


def _model_problems(prefix: str, exc: ValidationError) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = _field_path(tuple(err["loc"]))
        field = f"{prefix}.{loc}" if prefix and loc else prefix or loc
        out.append((None, field, _message(err)))
    return out


# ---------------------------------------------------------------------------
# dump_inventory


def dump_inventory(inv: Inventory, path: Path, *, reveal_secrets: bool = False) -> None:
    """Write ``inv`` to ``path`` as YAML, atomically.

    Secrets are written as ``"<redacted>"`` unless ``reveal_secrets`` is set;
    a file with revealed secrets is made readable by its owner only. A
    redacted file loads, but its credentials must be filled in before use.
    """
    path = Path(path)
    body = _plain(inv.model_dump(mode="python", exclude_none=True), reveal_secrets)
    text = yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600 if reveal_secrets else 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value: Any, reveal: bool) -> Any:
    """Model-dump output as YAML-safe builtins, with each SecretStr resolved."""
    if isinstance(value, SecretStr):
        return value.get_secret_value() if reveal else REDACTED
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, reveal) for v in value]
    return value
