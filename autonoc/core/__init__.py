"""Core: domain types, settings, errors, logging, database and Redis helpers."""
