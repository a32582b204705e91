"""Training code for Engram's own small Llama-architecture model (engram-tiny)."""
