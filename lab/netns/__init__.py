"""The network-namespace lab: FRR and net-snmp routers in Linux namespaces (``--backend netns``)."""
