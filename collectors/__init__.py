"""Collectors: inventory loading, SNMP/NETCONF pollers, counters to rates, telemetry storage."""
