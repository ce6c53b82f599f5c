"""Imports every module that declares bridge methods, so both registries are complete."""

from calchub.api.conat import (  # noqa: F401
    hub_methods,
    jupyter_methods,
    org_methods,
    project_methods,
)
