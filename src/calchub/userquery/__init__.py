"""The `query` engine: CoCalc's user queries over calchub's tables (spec/user-query.md)."""
