"""A NETCONF (RFC 6241/6242) server over SSH for the lab simulator.

:mod:`lab.netconf.datastore` holds the configuration datastores and the RPC
semantics, with no sockets; :mod:`lab.netconf.backend` connects them to a
device model; :mod:`lab.netconf.server` serves them over SSH.
"""

from __future__ import annotations

from lab.netconf.backend import (
    LAB_SYSTEM_NS,
    OC_INTERFACES_NS,
    CustomRpcBackend,
    DeviceBackend,
    LabNetworkBackend,
)
from lab.netconf.datastore import (
    BASE_NS,
    Datastore,
    LoopScheduler,
    RpcError,
    Scheduler,
    Timer,
    parse_xml,
)
from lab.netconf.server import CAPABILITIES, NetconfRunner, NetconfServer

__all__ = [
    "BASE_NS",
    "CAPABILITIES",
    "LAB_SYSTEM_NS",
    "OC_INTERFACES_NS",
    "CustomRpcBackend",
    "Datastore",
    "DeviceBackend",
    "LabNetworkBackend",
    "LoopScheduler",
    "NetconfRunner",
    "NetconfServer",
    "RpcError",
    "Scheduler",
    "Timer",
    "parse_xml",
]
