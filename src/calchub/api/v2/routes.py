"""Every v2 route module, imported so that its routes register."""

from calchub.api.v2 import account_routes, jupyter, project_routes  # noqa: F401
