"""Imports every module that declares bridge methods, so both registries are complete."""

from calchub.api.conat import hub_methods, org_methods, project_methods  # noqa: F401
