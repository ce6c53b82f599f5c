"""The conat bridge: `POST /api/conat/hub` and `POST /api/conat/project`, the two endpoints
CoCalc's current clients (the `cocalc-api` Python package and its MCP server) call."""
