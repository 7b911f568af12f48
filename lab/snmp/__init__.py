"""A lean SNMP agent for the lab: a hand-written BER codec for v1/v2c, pysnmp for v3.

:class:`SnmpAgentServer` serves thousands of simulated devices, one UDP socket
each, from one event loop; a device is anything that implements
:class:`DeviceMib` (see :class:`StaticMib`).
"""

from autonoc.core.ber import BerError
from lab.snmp.agent import (
    BGP_BACKWARD_TRANSITION,
    BGP_ESTABLISHED,
    LINK_DOWN,
    LINK_UP,
    AgentStats,
    DeviceMibController,
    SnmpAgentServer,
    V3Credentials,
)
from lab.snmp.mib import DeviceMib, MibLayout, Oid, StaticMib, Value

__all__ = [
    "BGP_BACKWARD_TRANSITION",
    "BGP_ESTABLISHED",
    "LINK_DOWN",
    "LINK_UP",
    "AgentStats",
    "BerError",
    "DeviceMib",
    "DeviceMibController",
    "MibLayout",
    "Oid",
    "SnmpAgentServer",
    "StaticMib",
    "V3Credentials",
    "Value",
]
