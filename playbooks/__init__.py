"""Playbooks: the catalog and the engine that plans, applies, verifies and rolls back."""
