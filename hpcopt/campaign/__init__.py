"""The campaign lifecycle and the registry of campaign kinds (see contract.py)."""
