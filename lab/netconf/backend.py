"""The contract between a NETCONF :class:`~lab.netconf.datastore.Datastore` and a device model.

:class:`DeviceBackend` is what the datastore needs from the device it
configures. :class:`LabNetworkBackend` implements it over a
:class:`~lab.network.LabNetwork` with OpenConfig interfaces
(``http://openconfig.net/yang/interfaces``): ``config/enabled`` drives
:meth:`LabNetwork.set_admin_status`, and ``get`` serves
``interfaces/interface/state`` from the model's live counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from lxml import etree

from autonoc.core.errors import LabError
from lab.netconf.datastore import BASE_NS, RpcError, qn
from lab.network import InterfaceState, LabNetwork

__all__ = ["OC_INTERFACES_NS", "DeviceBackend", "LabNetworkBackend"]

OC_INTERFACES_NS = "http://openconfig.net/yang/interfaces"

Element = Any  # an lxml.etree._Element


class DeviceBackend(Protocol):
    """What a datastore needs from the device model behind it.

    Trees are rooted at ``<data>`` in the NETCONF base namespace; their
    children are top-level data nodes.
    """

    @property
    def list_keys(self) -> Mapping[str, tuple[str, ...]]:
        """Key leaf local names of each list entry, by Clark name of the entry."""
        ...

    def initial_config(self, device: str) -> Element:
        """The device's running configuration at start."""
        ...

    def validate(self, device: str, config: Element) -> None:
        """Check a whole configuration against the model.

        Raises:
            RpcError: the configuration cannot be applied to the device.
        """
        ...

    def config_changed(self, device: str, running: Element) -> None:
        """Apply ``running``, called after every change to it (commit, rollback, edit)."""
        ...

    def operational(self, device: str) -> Element:
        """State data for ``get``, merged over the running configuration."""
        ...


def _oc(local: str) -> str:
    return qn(local, OC_INTERFACES_NS)


_INTERFACE = _oc("interface")


class LabNetworkBackend:
    """OpenConfig interfaces over a :class:`LabNetwork`.

    An interface missing from the configuration, or with no ``enabled``
    leaf, is enabled: the OpenConfig default.
    """

    def __init__(self, network: LabNetwork) -> None:
        self.network = network
        self._keys: dict[str, tuple[str, ...]] = {_INTERFACE: ("name",)}

    @property
    def list_keys(self) -> Mapping[str, tuple[str, ...]]:
        """``interface`` entries are keyed by ``name``."""
        return self._keys

    def initial_config(self, device: str) -> Element:
        """Every interface with ``config/name``, ``description`` and ``enabled``."""
        data, interfaces = self._skeleton()
        for intf in self.network.interfaces(device):
            _interface_entry(interfaces, intf, "config")
        return data

    def validate(self, device: str, config: Element) -> None:
        """Interfaces must exist on the device; ``enabled`` must be a boolean.

        Raises:
            RpcError: ``invalid-value`` naming the offending node.
        """
        known = {i.name for i in self.network.interfaces(device)}
        for entry in config.iterfind(f"{_oc('interfaces')}/{_INTERFACE}"):
            name = entry.findtext(_oc("name"), default="").strip()
            path = f"/interfaces/interface[name='{name}']"
            if name not in known:
                raise RpcError(
                    "invalid-value",
                    f"{device} has no interface {name!r} (it has: {', '.join(sorted(known))})",
                    path=path,
                )
            config_name = entry.findtext(f"{_oc('config')}/{_oc('name')}")
            if config_name is not None and config_name.strip() != name:
                raise RpcError(
                    "invalid-value",
                    f"config/name {config_name.strip()!r} differs from the key {name!r}",
                    path=f"{path}/config/name",
                )
            enabled = entry.findtext(f"{_oc('config')}/{_oc('enabled')}")
            if enabled is not None and enabled.strip() not in ("true", "false"):
                raise RpcError(
                    "invalid-value",
                    f"enabled must be true or false, not {enabled.strip()!r}",
                    path=f"{path}/config/enabled",
                )

    def config_changed(self, device: str, running: Element) -> None:
        """Set each interface's admin status from ``config/enabled``."""
        wanted: dict[str, bool] = {}
        for entry in running.iterfind(f"{_oc('interfaces')}/{_INTERFACE}"):
            name = entry.findtext(_oc("name"), default="").strip()
            enabled = entry.findtext(f"{_oc('config')}/{_oc('enabled')}", default="true")
            wanted[name] = enabled.strip() != "false"
        for intf in self.network.interfaces(device):
            up = wanted.get(intf.name, True)
            if up != intf.admin_up:
                try:
                    self.network.set_admin_status(device, intf.name, up=up)
                except LabError as exc:
                    raise RpcError("operation-failed", str(exc)) from exc

    def operational(self, device: str) -> Element:
        """``interfaces/interface/state`` with statuses and octet counters."""
        data, interfaces = self._skeleton()
        for intf in self.network.interfaces(device):
            state = _interface_entry(interfaces, intf, "state")
            etree.SubElement(state, _oc("mtu")).text = str(intf.mtu)
            etree.SubElement(state, _oc("admin-status")).text = "UP" if intf.admin_up else "DOWN"
            etree.SubElement(state, _oc("oper-status")).text = "UP" if intf.oper_up else "DOWN"
            counters = etree.SubElement(state, _oc("counters"))
            for leaf, value in (
                ("in-octets", intf.in_octets),
                ("in-unicast-pkts", intf.in_ucast_pkts),
                ("in-discards", intf.in_discards),
                ("in-errors", intf.in_errors),
                ("out-octets", intf.out_octets),
                ("out-unicast-pkts", intf.out_ucast_pkts),
                ("out-discards", intf.out_discards),
                ("out-errors", intf.out_errors),
            ):
                etree.SubElement(counters, _oc(leaf)).text = str(value)
        return data

    def _skeleton(self) -> tuple[Element, Element]:
        data = etree.Element(qn("data", BASE_NS), nsmap={None: BASE_NS})
        interfaces = etree.SubElement(data, _oc("interfaces"), nsmap={None: OC_INTERFACES_NS})
        return data, interfaces


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _interface_entry(interfaces: Element, intf: InterfaceState, container: str) -> Element:
    """An ``interface`` list entry with ``container`` (config or state) holding its
    name, description and enabled leaves; returns the container."""
    entry = etree.SubElement(interfaces, _INTERFACE)
    etree.SubElement(entry, _oc("name")).text = intf.name
    inner = etree.SubElement(entry, _oc(container))
    etree.SubElement(inner, _oc("name")).text = intf.name
    etree.SubElement(inner, _oc("description")).text = intf.alias
    etree.SubElement(inner, _oc("enabled")).text = _bool(intf.admin_up)
    return inner
