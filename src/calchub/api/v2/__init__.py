"""REST v2: `POST /api/v2/<path>`, CoCalc's current REST endpoints (a registry of routes by
path; each route module registers itself in `routes.py`)."""
