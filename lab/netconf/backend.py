"""The contract between a NETCONF :class:`~lab.netconf.datastore.Datastore` and a device model.

:class:`DeviceBackend` is what the datastore needs from the device it
configures. :class:`LabNetworkBackend` implements it over a
:class:`~lab.network.LabNetwork`, serving OpenConfig by device role (the
trees are built in :mod:`lab.netconf.openconfig`, which lists the paths):
routers, transponders, amplifiers and ROADMs.

Configuration reaches the model through its knobs. Every valid running
configuration reduces to a set of *settings*, ``(knob, target) → value``;
when running changes, only the settings that differ from the previous
running call a knob:

========================================================================  ==========================
leaf                                                                      knob
========================================================================  ==========================
``interfaces/interface/config/enabled``                                   ``set_admin_status``
``interfaces/interface/config/mtu``                                       ``set_mtu``
``interfaces/interface/config/description``                               ``set_description``
``.../isis/interfaces/interface/levels/level/afi-safi/af/config/metric``   ``set_igp_metric``
``.../bgp/neighbors/neighbor/config/enabled``                             ``set_bgp_neighbor``
``optical-amplifier/amplifiers/amplifier/config/target-gain``             ``set_amplifier_gain``
``components/component/optical-channel/config/target-output-power``       ``set_tx_power``
``aps/aps-modules/aps-module/config/force-to-port``                       ``set_protection``
========================================================================  ==========================

``force-to-port`` SECONDARY puts the wavelength on its protection path;
PRIMARY and NONE keep it on (or bring it back to) its working path, since the
lab's protection switches only by hand. A removed ``enabled`` leaf means its
OpenConfig default, true, and a removed ``force-to-port`` its default, NONE;
other removed leaves leave the model as it is. Leaves the model cannot change
(an AS, an address, a frequency, a type) must keep their value: ``validate``
refuses anything else with ``invalid-value``, naming the node in ``error-path``.

One RPC is not configuration: ``restart-process`` in the lab's own
:data:`LAB_SYSTEM_NS` (OpenConfig restarts processes only over gNOI), which
restarts a router's daemon (:meth:`LabNetworkBackend.custom_rpc`).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from lxml import etree

from autonoc.core.errors import LabError
from autonoc.core.inventory import Role
from lab.netconf.datastore import RpcError
from lab.netconf.openconfig import (
    APS_FORCE,
    LIST_KEYS,
    OC_AMPLIFIER_NS,
    OC_INTERFACES_NS,
    OC_IP_NS,
    OC_LINE_PROTECTION_NS,
    OC_NETWORK_INSTANCE_NS,
    OC_PLATFORM_NS,
    OC_SYSTEM_NS,
    OC_TERMINAL_DEVICE_NS,
    ApsModule,
    RouterFacts,
    amplifier_tree,
    frequency_mhz,
    identity_name,
    roadm_tree,
    router_tree,
    transceiver_name,
    transponder_tree,
)
from lab.network import IGP_MAX_METRIC, BgpSessionState, InterfaceState, LabNetwork
from lab.optical import LinePortState, OpticalSnapshot
from lab.optical.elements import TX_MAX_DBM, TX_MIN_DBM

__all__ = [
    "LAB_SYSTEM_MODULE",
    "LAB_SYSTEM_NS",
    "OC_INTERFACES_NS",
    "CustomRpcBackend",
    "DeviceBackend",
    "LabNetworkBackend",
]

LAB_SYSTEM_NS = "urn:autonoc:params:xml:ns:yang:autonoc-lab-system"
"""The lab's own RPCs (``lab/netconf/autonoc-lab-system.yang``): ``restart-process``."""
LAB_SYSTEM_MODULE = ("autonoc-lab-system", "2026-11-23")
"""Its YANG module's name and revision, as the hello advertises them."""

Element = Any  # an lxml.etree._Element

Value = bool | int | float | str
Setting = tuple[str, str]
"""``(knob, target)``: a knob name and the interface, neighbour or element it sets."""

MTU_RANGE = (576, 9216)
_DEFAULTS: dict[str, Value] = {"enabled": True, "neighbor": True, "force-to-port": "NONE"}
"""What a knob goes back to when its leaf leaves the configuration."""
_LOOPBACK_TYPE = 24


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


class CustomRpcBackend(DeviceBackend, Protocol):
    """A backend that also answers RPCs outside the NETCONF base namespace."""

    def custom_rpc(self, device: str, op: Element) -> Element | None:
        """Run ``op`` (an RPC operation element) on ``device``; ``<data>``, or None for ``<ok/>``.

        Raises:
            RpcError: ``operation-not-supported`` for an operation it does not know,
                or the operation failed.
        """
        ...


class LabNetworkBackend:
    """OpenConfig over a :class:`LabNetwork`, for every device role it simulates.

    Thread-safe: the network locks itself, and the backend's own records
    (the settings last applied, the FEC block counters) have a lock.
    """

    def __init__(self, network: LabNetwork) -> None:
        self.network = network
        self._keys: dict[str, tuple[str, ...]] = dict(LIST_KEYS)
        self._lock = threading.Lock()
        self._applied: dict[str, dict[Setting, Value]] = {}
        self._seen_version: dict[str, int] = {}
        self._fec: dict[str, tuple[float, float]] = {}  # line port -> (at, blocks)
        self._boot_ns: dict[str, int] = {}
        self._router_ids = {
            name: _loopback(n) for n, name in enumerate(network.router_names, start=1)
        }
        self._system_ids = {name: _system_id(rid) for name, rid in self._router_ids.items()}

    @property
    def list_keys(self) -> Mapping[str, tuple[str, ...]]:
        """Every OpenConfig list served, with its keys (see :data:`LIST_KEYS`)."""
        return self._keys

    def initial_config(self, device: str) -> Element:
        """The device's configuration as the model stands now."""
        tree = self._tree(device, state=False)
        settings = self._settings(device, tree)
        with self._lock:
            self._applied[device] = settings
        return tree

    def drifted_config(self, device: str) -> Element | None:
        """The model's configuration when it changed outside NETCONF since last applied, else None.

        Faults (an MTU pushed by hand, a neighbour shut) and SNMP SETs change
        the model directly; the datastore adopts what this returns.
        """
        version = self.network.config_version(device)
        with self._lock:
            if self._seen_version.get(device) == version:
                return None  # nothing changed anywhere: the common case, and cheap
            self._seen_version[device] = version
        tree = self._tree(device, state=False)
        settings = self._settings(device, tree)
        with self._lock:
            if settings == self._applied.get(device):
                return None  # our own edits, already in running
            self._applied[device] = settings
        return tree

    def validate(self, device: str, config: Element) -> None:
        """Check ``config`` against the model without changing anything.

        Raises:
            RpcError: ``invalid-value`` with the offending node's path: an unknown
                interface, neighbour or component, a value out of the model's range,
                or a change to a leaf the model cannot change.
        """
        self._settings(device, config)

    def config_changed(self, device: str, running: Element) -> None:
        """Call the knob of every setting that differs from the previous running.

        Raises:
            RpcError: ``running`` is invalid (an edit with ``test-option`` set
                skips validation), or the model refused a value.
        """
        new = self._settings(device, running)
        with self._lock:
            old = self._applied.get(device)
        if old is None:
            old = self._settings(device, self._tree(device, state=False))
        changes = [(key, value) for key, value in new.items() if old.get(key) != value]
        for key in old.keys() - new.keys():
            default = _DEFAULTS.get(key[0])
            if default is not None and old[key] != default:
                changes.append((key, default))
        for (knob, target), value in sorted(changes, key=lambda kv: kv[0]):
            try:
                self._knob(knob)(device, target, value)
            except LabError as exc:
                # Keep the old record: the next change retries what did not apply.
                raise RpcError("operation-failed", str(exc)) from exc
        with self._lock:
            self._applied[device] = new

    def operational(self, device: str) -> Element:
        """The device's state containers (and list keys), for ``get``."""
        return self._tree(device, state=True)

    def custom_rpc(self, device: str, op: Element) -> Element | None:
        """The lab's own RPC: ``<restart-process><name>bgpd</name></restart-process>``.

        Restarts a router's daemon (a new pid and start time; a runaway one calms
        down). Not configuration: no datastore, lock or commit is involved.

        Raises:
            RpcError: ``operation-not-supported`` for any other operation or a device
                without processes, ``missing-element`` without ``<name>``,
                ``invalid-value`` for a process the router does not run.
        """
        qname = etree.QName(op)
        if qname.namespace != LAB_SYSTEM_NS or qname.localname != "restart-process":
            raise RpcError(
                "operation-not-supported",
                f"operation {qname.localname!r} in namespace {qname.namespace!r} is not supported",
                error_type="protocol",
                info=(("bad-element", qname.localname),),
            )
        role = self.network.device(device).role
        if role is not Role.ROUTER:
            raise RpcError(
                "operation-not-supported",
                f"{device} is a {role.value}; only routers have processes to restart",
                error_type="protocol",
                info=(("bad-element", "restart-process"),),
            )
        name = (op.findtext(f"{{{LAB_SYSTEM_NS}}}name") or "").strip()
        if not name:
            raise RpcError(
                "missing-element",
                "restart-process needs <name>, the process to restart (e.g. telemetryd)",
                error_type="protocol",
                info=(("bad-element", "name"),),
            )
        try:
            self.network.restart_process(device, name)
        except LabError as exc:
            raise RpcError(
                "invalid-value",
                str(exc),
                path="/restart-process/name",
                info=(("bad-element", "name"),),
            ) from exc
        return None

    # Trees ---------------------------------------------------------------------

    def _tree(self, device: str, *, state: bool) -> Element:
        role = self.network.device(device).role
        net = self.network
        if role is Role.ROUTER:
            interfaces = net.interfaces(device)
            sessions = net.bgp_sessions(device)
            system = net.system(device) if state else None
            processes = net.processes(device) if state else ()
            return router_tree(
                self._facts(device, sessions),
                interfaces,
                sessions,
                system,
                state=state,
                processes=processes,
            )
        snap = net.optical_snapshot()
        if role is Role.TRANSPONDER:
            ports = _line_ports(snap, device)
            clients = sorted(
                (c for c in snap.client_ports.values() if c.transponder == device),
                key=lambda c: c.name,
            )
            fec = self._count_fec(snap, ports) if state else {}
            return transponder_tree(
                ports,
                clients,
                self._tx_targets(device, ports),
                fec,
                state=state,
                aps=self._aps_modules(device, snap, ports),
            )
        if role is Role.AMPLIFIER:
            return amplifier_tree(snap.amplifiers[device], state=state)
        if role is Role.ROADM:
            return roadm_tree(snap.roadms[device], state=state)
        raise LabError(f"lab device {device!r} has role {role.value}, which NETCONF does not serve")

    def _facts(self, device: str, sessions: Sequence[BgpSessionState]) -> RouterFacts:
        boot = self._boot_ns.get(device)
        if boot is None:
            now = self.network.now()
            boot = round((now - self.network.sys_uptime(device, at=now) / 100.0) * 1e9)
            self._boot_ns[device] = boot
        return RouterFacts(
            hostname=device,
            asn=sessions[0].local_as if sessions else None,
            router_id=self._router_ids[device],
            system_ids=self._system_ids,
            boot_ns=boot,
        )

    def _tx_targets(self, device: str, ports: list[LinePortState]) -> dict[str, float]:
        """Each line port's configured tx power: as last applied, else the model's set point."""
        with self._lock:
            applied = self._applied.get(device, {})
        targets: dict[str, float] = {}
        quiet: OpticalSnapshot | None = None
        for port in ports:
            value = applied.get(("tx-power", port.name))
            if value is None:
                quiet = quiet or self.network.optical_snapshot(noise=False)
                value = round(quiet.line_ports[port.name].tx_power_dbm, 2)
            targets[port.name] = float(value)
        return targets

    def _aps_modules(
        self, device: str, snap: OpticalSnapshot, ports: list[LinePortState]
    ) -> list[ApsModule]:
        """A protection switch per line port heading a protected wavelength.

        ``force-to-port`` reads as last applied while the model agrees with it
        (PRIMARY and NONE both mean the working path); when the model moved
        behind NETCONF's back (a direct ``set_protection``), it reads what the
        model does, so the datastore sees the drift.
        """
        with self._lock:
            applied = self._applied.get(device, {})
        out = []
        for port in ports:
            ch = snap.channels.get(port.channel) if port.channel else None
            if ch is None or ch.a_port != port.name or not ch.protection_ab:
                continue
            force = str(applied.get(("force-to-port", port.name), "NONE"))
            if (force == "SECONDARY") != ch.on_protection:
                force = "SECONDARY" if ch.on_protection else "NONE"
            out.append(ApsModule(port.name, force, ch.on_protection))
        return out

    def _count_fec(self, snap: OpticalSnapshot, ports: list[LinePortState]) -> dict[str, int]:
        """Integrate each port's uncorrectable-block rate into a counter, from its first read."""
        out: dict[str, int] = {}
        with self._lock:
            for port in ports:
                at, blocks = self._fec.get(port.name, (snap.at, 0.0))
                blocks += port.post_fec_uncorrectable * max(0.0, snap.at - at)
                self._fec[port.name] = (max(at, snap.at), blocks)
                out[port.name] = int(blocks)
        return out

    # Settings --------------------------------------------------------------------

    def _settings(self, device: str, config: Element) -> dict[Setting, Value]:
        role = self.network.device(device).role
        out: dict[Setting, Value] = {}
        if role is Role.ROUTER:
            self._router_settings(device, config, out)
        elif role is Role.TRANSPONDER:
            self._transponder_settings(device, config, out)
        elif role is Role.AMPLIFIER:
            self._amplifier_settings(device, config, out)
        elif role is Role.ROADM:
            self._roadm_settings(device, config, out)
        return out

    def _router_settings(self, device: str, config: Element, out: dict[Setting, Value]) -> None:
        interfaces = {i.name: i for i in self.network.interfaces(device)}
        for entry in config.iterfind(f"{_IF}interfaces/{_IF}interface"):
            name = _key(entry, _IF, "name")
            path = f"/interfaces/interface[name='{name}']"
            intf = interfaces.get(name)
            if intf is None:
                raise _invalid(
                    f"{device} has no interface {name!r} (it has: {', '.join(interfaces)})", path
                )
            _interface_settings(intf, entry, path, out)
        for instance in config.iterfind(f"{_NI}network-instances/{_NI}network-instance"):
            name = _key(instance, _NI, "name")
            path = f"/network-instances/network-instance[name='{name}']"
            if name != "DEFAULT":
                raise _invalid(f"{device} has only the DEFAULT network instance", path)
            for proto in instance.iterfind(f"{_NI}protocols/{_NI}protocol"):
                ident = proto.findtext(f"{_NI}identifier", default="").strip()
                proto_path = (
                    f"{path}/protocols/protocol[identifier='{ident}']"
                    f"[name='{proto.findtext(f'{_NI}name', default='').strip()}']"
                )
                kind = identity_name(ident)
                if kind == "BGP":
                    self._bgp_settings(device, proto, proto_path, out)
                elif kind == "ISIS":
                    _isis_settings(device, interfaces, proto, proto_path, out)
                else:
                    raise _invalid(
                        f"protocol {ident!r} is not supported on {device} (BGP and ISIS are)",
                        proto_path + "/identifier",
                    )
        hostname = config.findtext(f"{_SYS}system/{_SYS}config/{_SYS}hostname")
        if hostname is not None and hostname.strip() != device:
            raise _invalid(
                f"the lab cannot rename {device} (hostname {hostname.strip()!r})",
                "/system/config/hostname",
            )

    def _bgp_settings(
        self, device: str, proto: Element, path: str, out: dict[Setting, Value]
    ) -> None:
        sessions = {s.peer_address: s for s in self.network.bgp_sessions(device)}
        local_as = next(iter(sessions.values())).local_as if sessions else None
        glob = proto.find(f"{_NI}bgp/{_NI}global/{_NI}config")
        if glob is not None:
            asn = _int_leaf(glob, _NI, "as", f"{path}/bgp/global/config")
            if asn is not None and asn != local_as:
                raise _invalid(
                    f"the lab cannot change {device}'s AS: it is {local_as}, not {asn}",
                    f"{path}/bgp/global/config/as",
                )
            router_id = glob.findtext(f"{_NI}router-id")
            if router_id is not None:
                try:
                    ipaddress.IPv4Address(router_id.strip())
                except ValueError:
                    raise _invalid(
                        f"router-id {router_id.strip()!r} is not an IPv4 address",
                        f"{path}/bgp/global/config/router-id",
                    ) from None
        for neighbor in proto.iterfind(f"{_NI}bgp/{_NI}neighbors/{_NI}neighbor"):
            address = _key(neighbor, _NI, "neighbor-address")
            n_path = f"{path}/bgp/neighbors/neighbor[neighbor-address='{address}']"
            session = sessions.get(address)
            if session is None:
                known = ", ".join(sessions) or "none"
                raise _invalid(f"{device} has no BGP neighbour {address} (it has: {known})", n_path)
            for afi_safi in neighbor.iterfind(f"{_NI}afi-safis/{_NI}afi-safi"):
                _bgp_afi_safi(afi_safi, n_path)
            box = neighbor.find(f"{_NI}config")
            if box is None:
                continue
            _same_key(box, _NI, "neighbor-address", address, f"{n_path}/config")
            peer_as = _int_leaf(box, _NI, "peer-as", f"{n_path}/config")
            if peer_as is not None and peer_as != session.peer_as:
                raise _invalid(
                    f"neighbour {address} ({session.peer_device}) is AS {session.peer_as}, "
                    f"not {peer_as}; the lab cannot change it",
                    f"{n_path}/config/peer-as",
                )
            enabled = _bool_leaf(box, _NI, "enabled", f"{n_path}/config")
            if enabled is not None:
                out[("neighbor", address)] = enabled

    def _transponder_settings(
        self, device: str, config: Element, out: dict[Setting, Value]
    ) -> None:
        snap = self.network.optical_snapshot()
        ports = {p.name: p for p in _line_ports(snap, device)}
        aps = {m.name: m for m in self._aps_modules(device, snap, list(ports.values()))}
        known = set(ports) | {transceiver_name(p) for p in ports} | set(aps)
        known |= {c.name for c in snap.client_ports.values() if c.transponder == device}
        for comp in config.iterfind(f"{_PLAT}components/{_PLAT}component"):
            name = _key(comp, _PLAT, "name")
            path = f"/components/component[name='{name}']"
            if name not in known:
                raise _invalid(
                    f"{device} has no component {name!r} (it has: {', '.join(sorted(known))})",
                    path,
                )
            box = comp.find(f"{_PLAT}config")
            if box is not None:
                _same_key(box, _PLAT, "name", name, f"{path}/config")
            och = comp.find(f"{_TERM}optical-channel/{_TERM}config")
            if och is None:
                continue
            och_path = f"{path}/optical-channel/config"
            port = ports.get(name)
            if port is None:
                raise _invalid(f"{name} is not an optical channel", och_path)
            _optical_channel_settings(port, och, och_path, out)
        for channel in config.iterfind(
            f"{_TERM}terminal-device/{_TERM}logical-channels/{_TERM}channel"
        ):
            index = _key(channel, _TERM, "index")
            path = f"/terminal-device/logical-channels/channel[index='{index}']"
            if index not in {str(n) for n in range(1, len(ports) + 1)}:
                raise _invalid(f"{device} has no logical channel {index}", path)
            box = channel.find(f"{_TERM}config")
            if box is None:
                continue
            _same_key(box, _TERM, "index", index, f"{path}/config")
            admin = box.findtext(f"{_TERM}admin-state")
            if admin is not None and admin.strip() != "ENABLED":
                raise _invalid(
                    f"the lab cannot set logical channel {index} {admin.strip()}; "
                    "it is always ENABLED",
                    f"{path}/config/admin-state",
                )
        for module in config.iterfind(f"{_APS}aps/{_APS}aps-modules/{_APS}aps-module"):
            _aps_settings(device, aps, module, out)

    def _amplifier_settings(self, device: str, config: Element, out: dict[Setting, Value]) -> None:
        amp = self.network.optical_snapshot().amplifiers[device]
        for entry in config.iterfind(f"{_AMP}optical-amplifier/{_AMP}amplifiers/{_AMP}amplifier"):
            name = _key(entry, _AMP, "name")
            path = f"/optical-amplifier/amplifiers/amplifier[name='{name}']"
            if name != device:
                raise _invalid(f"{device} has only amplifier {device!r}", path)
            box = entry.find(f"{_AMP}config")
            if box is None:
                continue
            box_path = f"{path}/config"
            _same_key(box, _AMP, "name", name, box_path)
            _same_identity(box, _AMP, "type", "EDFA", box_path)
            _same_identity(box, _AMP, "amp-mode", "CONSTANT_GAIN", box_path)
            enabled = _bool_leaf(box, _AMP, "enabled", box_path)
            if enabled is False:
                raise _invalid(f"the lab cannot switch {device}'s pumps off", f"{box_path}/enabled")
            gain = _float_leaf(box, _AMP, "target-gain", box_path)
            if gain is None:
                continue
            if not amp.min_gain_db <= gain <= amp.max_gain_db:
                raise _invalid(
                    f"target-gain {gain} dB is outside {device}'s range "
                    f"{amp.min_gain_db}-{amp.max_gain_db} dB",
                    f"{box_path}/target-gain",
                )
            out[("gain", device)] = gain

    def _roadm_settings(self, device: str, config: Element, out: dict[Setting, Value]) -> None:
        degrees = {d.name for d in self.network.optical_snapshot().roadms[device].degrees}
        for comp in config.iterfind(f"{_PLAT}components/{_PLAT}component"):
            name = _key(comp, _PLAT, "name")
            path = f"/components/component[name='{name}']"
            if name not in degrees:
                raise _invalid(
                    f"{device} has no component {name!r} (it has: {', '.join(sorted(degrees))})",
                    path,
                )
            box = comp.find(f"{_PLAT}config")
            if box is not None:
                _same_key(box, _PLAT, "name", name, f"{path}/config")

    # Knobs -----------------------------------------------------------------------

    def _knob(self, knob: str) -> Callable[[str, str, Value], None]:
        net = self.network
        knobs: dict[str, Callable[[str, str, Value], None]] = {
            "enabled": lambda d, t, v: net.set_admin_status(d, t, up=bool(v)),
            "mtu": lambda d, t, v: net.set_mtu(d, t, int(v)),
            "description": lambda d, t, v: net.set_description(d, t, str(v)),
            "metric": lambda d, t, v: net.set_igp_metric(d, t, int(v)),
            "neighbor": lambda d, t, v: net.set_bgp_neighbor(d, t, enabled=bool(v)),
            "gain": lambda d, t, v: net.set_amplifier_gain(t, float(v)),
            "tx-power": lambda d, t, v: net.set_tx_power(t, float(v)),
            "force-to-port": lambda d, t, v: net.set_protection(t, secondary=v == "SECONDARY"),
        }
        return knobs[knob]


# Parsing helpers -----------------------------------------------------------------------

_IF = f"{{{OC_INTERFACES_NS}}}"
_IP = f"{{{OC_IP_NS}}}"
_NI = f"{{{OC_NETWORK_INSTANCE_NS}}}"
_SYS = f"{{{OC_SYSTEM_NS}}}"
_PLAT = f"{{{OC_PLATFORM_NS}}}"
_TERM = f"{{{OC_TERMINAL_DEVICE_NS}}}"
_AMP = f"{{{OC_AMPLIFIER_NS}}}"
_APS = f"{{{OC_LINE_PROTECTION_NS}}}"


def _invalid(message: str, path: str) -> RpcError:
    leaf = path.rsplit("/", 1)[-1].split("[", 1)[0]
    return RpcError("invalid-value", message, path=path, info=(("bad-element", leaf),))


def _key(entry: Element, ns: str, local: str) -> str:
    return str(entry.findtext(f"{ns}{local}", default="")).strip()


def _same_key(box: Element, ns: str, local: str, key: str, path: str) -> None:
    """A ``config`` container's copy of a list key must equal the key."""
    text = box.findtext(f"{ns}{local}")
    if text is not None and text.strip() != key:
        raise _invalid(
            f"{local} {text.strip()!r} differs from the list key {key!r}", f"{path}/{local}"
        )


def _same_identity(box: Element, ns: str, local: str, want: str, path: str) -> None:
    text = box.findtext(f"{ns}{local}")
    if text is not None and identity_name(text) != want:
        raise _invalid(
            f"{local} {text.strip()!r} cannot be changed (it is {want})", f"{path}/{local}"
        )


def _bool_leaf(box: Element, ns: str, local: str, path: str) -> bool | None:
    text = box.findtext(f"{ns}{local}")
    if text is None:
        return None
    value = str(text).strip()
    if value not in ("true", "false"):
        raise _invalid(f"{local} must be true or false, not {value!r}", f"{path}/{local}")
    return value == "true"


def _int_leaf(box: Element, ns: str, local: str, path: str) -> int | None:
    text = box.findtext(f"{ns}{local}")
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise _invalid(f"{local} {text.strip()!r} is not an integer", f"{path}/{local}") from None


def _float_leaf(box: Element, ns: str, local: str, path: str) -> float | None:
    text = box.findtext(f"{ns}{local}")
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        raise _invalid(f"{local} {text.strip()!r} is not a decimal", f"{path}/{local}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise _invalid(f"{local} {text.strip()!r} is not a finite decimal", f"{path}/{local}")
    return value


def _interface_settings(
    intf: InterfaceState, entry: Element, path: str, out: dict[Setting, Value]
) -> None:
    name = intf.name
    loopback = intf.if_type == _LOOPBACK_TYPE
    box = entry.find(f"{_IF}config")
    if box is not None:
        box_path = f"{path}/config"
        _same_key(box, _IF, "name", name, box_path)
        _same_identity(
            box, _IF, "type", "softwareLoopback" if loopback else "ethernetCsmacd", box_path
        )
        enabled = _bool_leaf(box, _IF, "enabled", box_path)
        if enabled is not None:
            out[("enabled", name)] = enabled
        mtu = _int_leaf(box, _IF, "mtu", box_path)
        if mtu is not None:
            if loopback:
                raise _invalid(f"the MTU of loopback {name} is fixed", f"{box_path}/mtu")
            lo, hi = MTU_RANGE
            if not lo <= mtu <= hi:
                raise _invalid(f"MTU {mtu} is outside {lo}-{hi}", f"{box_path}/mtu")
            out[("mtu", name)] = mtu
        description = box.findtext(f"{_IF}description")
        if description is not None:
            if len(description) > 255:
                raise _invalid(
                    f"description is {len(description)} characters; at most 255 fit",
                    f"{box_path}/description",
                )
            out[("description", name)] = description
    for address in entry.iterfind(
        f"{_IF}subinterfaces/{_IF}subinterface/{_IP}ipv4/{_IP}addresses/{_IP}address"
    ):
        ip = _key(address, _IP, "ip")
        if ip != intf.address:
            have = intf.address or "no address"
            raise _invalid(
                f"the lab cannot re-address {intf.device}:{name} (it has {have})",
                f"{path}/subinterfaces/subinterface[index='0']/ipv4/addresses/address[ip='{ip}']",
            )


def _bgp_afi_safi(afi_safi: Element, path: str) -> None:
    name = _key(afi_safi, _NI, "afi-safi-name")
    a_path = f"{path}/afi-safis/afi-safi[afi-safi-name='{name}']"
    if identity_name(name) != "IPV4_UNICAST":
        raise _invalid(f"the lab's BGP carries IPV4_UNICAST only, not {name!r}", a_path)
    box = afi_safi.find(f"{_NI}config")
    if box is not None and _bool_leaf(box, _NI, "enabled", f"{a_path}/config") is False:
        raise _invalid(
            "the lab cannot disable IPV4_UNICAST alone; disable the neighbour",
            f"{a_path}/config/enabled",
        )


def _isis_settings(
    device: str,
    interfaces: Mapping[str, InterfaceState],
    proto: Element,
    path: str,
    out: dict[Setting, Value],
) -> None:
    for entry in proto.iterfind(f"{_NI}isis/{_NI}interfaces/{_NI}interface"):
        name = _key(entry, _NI, "interface-id")
        i_path = f"{path}/isis/interfaces/interface[interface-id='{name}']"
        intf = interfaces.get(name)
        if intf is None or intf.igp_metric is None:
            links = ", ".join(n for n, i in interfaces.items() if i.igp_metric is not None)
            raise _invalid(f"{device}:{name} is not an IS-IS interface (they are: {links})", i_path)
        box = entry.find(f"{_NI}config")
        if box is not None:
            _same_key(box, _NI, "interface-id", name, f"{i_path}/config")
            if _bool_leaf(box, _NI, "enabled", f"{i_path}/config") is False:
                raise _invalid(
                    f"the lab cannot take {name} out of IS-IS; shut the interface or "
                    f"set metric {IGP_MAX_METRIC} to drain it",
                    f"{i_path}/config/enabled",
                )
        for level in entry.iterfind(f"{_NI}levels/{_NI}level"):
            number = _key(level, _NI, "level-number")
            l_path = f"{i_path}/levels/level[level-number='{number}']"
            if number != "2":
                raise _invalid(f"the lab runs IS-IS level 2 only, not level {number!r}", l_path)
            for af in level.iterfind(f"{_NI}afi-safi/{_NI}af"):
                afi = _key(af, _NI, "afi-name")
                safi = _key(af, _NI, "safi-name")
                af_path = f"{l_path}/afi-safi/af[afi-name='{afi}'][safi-name='{safi}']"
                if (identity_name(afi), identity_name(safi)) != ("IPV4", "UNICAST"):
                    raise _invalid("the lab routes IPV4 UNICAST only", af_path)
                box = af.find(f"{_NI}config")
                metric = None if box is None else _int_leaf(box, _NI, "metric", f"{af_path}/config")
                if metric is None:
                    continue
                if not 1 <= metric <= IGP_MAX_METRIC:
                    raise _invalid(
                        f"metric {metric} is outside 1-{IGP_MAX_METRIC}", f"{af_path}/config/metric"
                    )
                if ("metric", name) in out:
                    raise _invalid(
                        f"{name} has two IPV4 UNICAST metrics; write the af keys as in "
                        "get-config (oc-isis-types:IPV4, oc-isis-types:UNICAST)",
                        af_path,
                    )
                out[("metric", name)] = metric


def _optical_channel_settings(
    port: LinePortState, och: Element, path: str, out: dict[Setting, Value]
) -> None:
    frequency = _int_leaf(och, _TERM, "frequency", path)
    if frequency is not None:
        fixed = frequency_mhz(port.frequency_thz) if port.frequency_thz is not None else None
        if frequency != fixed:
            raise _invalid(
                f"{port.name} is not tunable in the lab: its frequency is {fixed} MHz",
                f"{path}/frequency",
            )
    mode = _int_leaf(och, _TERM, "operational-mode", path)
    if mode is not None and mode != 1:
        raise _invalid(
            f"{port.name} has one operational mode (1, 400ZR), not {mode}",
            f"{path}/operational-mode",
        )
    power = _float_leaf(och, _TERM, "target-output-power", path)
    if power is None:
        return
    if not TX_MIN_DBM <= power <= TX_MAX_DBM:
        raise _invalid(
            f"target-output-power {power} dBm is outside the 400ZR range "
            f"{TX_MIN_DBM} to {TX_MAX_DBM} dBm",
            f"{path}/target-output-power",
        )
    out[("tx-power", port.name)] = power


def _aps_settings(
    device: str, modules: Mapping[str, ApsModule], entry: Element, out: dict[Setting, Value]
) -> None:
    name = _key(entry, _APS, "name")
    path = f"/aps/aps-modules/aps-module[name='{name}']"
    module = modules.get(name)
    if module is None:
        have = ", ".join(sorted(modules)) or "none: it heads no protected wavelength"
        raise _invalid(f"{device} has no protection switch {name!r} (it has: {have})", path)
    box = entry.find(f"{_APS}config")
    if box is None:
        return
    box_path = f"{path}/config"
    _same_key(box, _APS, "name", name, box_path)
    if _bool_leaf(box, _APS, "revertive", box_path):
        raise _invalid(
            f"{name} switches only by hand in the lab: revertive must be false",
            f"{box_path}/revertive",
        )
    force = box.findtext(f"{_APS}force-to-port")
    if force is None:
        return
    value = force.strip()
    if value not in APS_FORCE:
        raise _invalid(
            f"force-to-port must be one of {', '.join(APS_FORCE)}, not {value!r}",
            f"{box_path}/force-to-port",
        )
    out[("force-to-port", module.line_port)] = value


def _line_ports(snap: OpticalSnapshot, transponder: str) -> list[LinePortState]:
    return sorted(
        (p for p in snap.line_ports.values() if p.transponder == transponder),
        key=lambda p: p.name,
    )


def _loopback(n: int) -> str:
    # Mirrors lab.network's numbering (router n in topology order), which it does not expose.
    return f"10.255.{n // 256}.{n % 256}"


def _system_id(router_id: str) -> str:
    """The IS-IS system ID from a router ID, as operators derive it: 10.255.0.5 → 0102.5500.0005."""
    digits = "".join(f"{int(octet):03d}" for octet in router_id.split("."))
    return ".".join(digits[i : i + 4] for i in range(0, 12, 4))
