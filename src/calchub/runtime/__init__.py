"""The project runtime: starting, stopping and working inside projects (files, processes).

`ProjectRuntime` is the interface the projects domain uses; `LocalRuntime` runs every project
in a bubblewrap sandbox on this machine."""

from calchub.runtime.base import (
    MAX_LISTING_ENTRIES,
    DirectoryEntry,
    DirectoryListing,
    ExecRequest,
    ExecResult,
    FileContents,
    FileFailure,
    PathRefused,
    ProjectRuntime,
    ProjectSpec,
    Quota,
    QuotaExceeded,
    RuntimeFailure,
    RuntimeStatus,
    SandboxUnavailable,
)
from calchub.runtime.local import LocalRuntime
from calchub.runtime.sandbox import SandboxCheck

__all__ = [
    "MAX_LISTING_ENTRIES",
    "DirectoryEntry",
    "DirectoryListing",
    "ExecRequest",
    "ExecResult",
    "FileContents",
    "FileFailure",
    "LocalRuntime",
    "PathRefused",
    "ProjectRuntime",
    "ProjectSpec",
    "Quota",
    "QuotaExceeded",
    "RuntimeFailure",
    "RuntimeStatus",
    "SandboxCheck",
    "SandboxUnavailable",
]
