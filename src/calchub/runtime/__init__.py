"""The project runtime: starting, stopping and working inside projects (files, processes).

`ProjectRuntime` is the interface the projects domain uses; `LocalRuntime` runs every project
in a bubblewrap sandbox on this machine, `FakeRuntime` runs them in-process for tests.
`build_runtime` makes the one the settings name."""

from calchub.runtime.backends import build_runtime
from calchub.runtime.base import (
    MAX_LISTING_ENTRIES,
    Busy,
    DirectoryEntry,
    DirectoryListing,
    ExecRequest,
    ExecResult,
    ExecWatch,
    FileContents,
    FileFailure,
    NetworkRules,
    PathRefused,
    ProjectRuntime,
    ProjectSpec,
    Quota,
    QuotaExceeded,
    RuntimeFailure,
    RuntimeOptions,
    RuntimeStatus,
    SandboxUnavailable,
)
from calchub.runtime.local import LocalRuntime
from calchub.runtime.sandbox import SandboxCheck

__all__ = [
    "MAX_LISTING_ENTRIES",
    "Busy",
    "DirectoryEntry",
    "DirectoryListing",
    "ExecRequest",
    "ExecResult",
    "ExecWatch",
    "FileContents",
    "FileFailure",
    "LocalRuntime",
    "NetworkRules",
    "PathRefused",
    "ProjectRuntime",
    "ProjectSpec",
    "Quota",
    "QuotaExceeded",
    "RuntimeFailure",
    "RuntimeOptions",
    "RuntimeStatus",
    "SandboxCheck",
    "SandboxUnavailable",
    "build_runtime",
]
