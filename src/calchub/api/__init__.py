"""The HTTP edges: each protocol parses requests, resolves the key to an Actor, calls the
domain and renders its answers and refusals in its own words (see docs/architecture.md)."""
