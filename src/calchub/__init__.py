"""calchub: a self-hostable server for the CoCalc HTTP API v1."""

__version__ = "0.1.0"
