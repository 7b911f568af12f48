"""Agents: correlation, diagnosis, the policy gate and the LangGraph incident loop."""
