"""autonoc: AI-agent network operations for IP and optical networks."""

__version__ = "0.1.0"
