"""Lab: a simulated network speaking real SNMP on loopback, with injectable faults."""
