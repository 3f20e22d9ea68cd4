"""LangGraph's Agent Protocol over our sessions and runs (docs/agent-protocol.md)."""
