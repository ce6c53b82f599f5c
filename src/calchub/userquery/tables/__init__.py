"""The user-query tables, one module per area of the spec's §3."""
