"""API v1: `POST /api/v1/<event>`, the protocol CoCalc removed in 2025 and calchub keeps."""
