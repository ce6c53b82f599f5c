"""Runtime backends by name, as the `runtime` setting chooses them (like JupyterHub's
`spawner_class`): a short name, or `package.module:Class` for a backend of one's own."""

from __future__ import annotations

import importlib

from calchub.runtime.base import ProjectRuntime, RuntimeOptions

BACKENDS = {
    # Each project in a bubblewrap sandbox on this machine.
    "local": "calchub.runtime.local:LocalRuntime",
    # Each project a Slurm job, in the same sandbox, on whichever node Slurm picks.
    "slurm": "calchub.runtime.slurm:SlurmRuntime",
    # In-process, no isolation: for tests of the domain only.
    "fake": "calchub.runtime.fake:FakeRuntime",
}


class UnknownBackend(ValueError):
    pass


def backend_class(name: str) -> type[ProjectRuntime]:
    target = BACKENDS.get(name, name)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        raise UnknownBackend(
            f"unknown runtime {name!r}: use one of {', '.join(BACKENDS)} or 'module:Class'"
        )
    try:
        found = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UnknownBackend(f"cannot load runtime {name!r}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, ProjectRuntime)):
        raise UnknownBackend(f"runtime {name!r} is not a ProjectRuntime")
    return found


def build_runtime(name: str, options: RuntimeOptions) -> ProjectRuntime:
    return backend_class(name).from_options(options)
