"""Installing the agent where project uids can read it: a content-addressed copy of the
`calchub.runtime.agent` package under the runtime root, which sandboxes bind read-only.

A copy, not the installed package: the package may live where project uids cannot read
(under /root, say). Content addressing means a folder never changes once written, so
sandboxes started with an older agent keep working while new ones get the new one.
"""

from __future__ import annotations

import compileall
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

AGENT_PACKAGE = Path(__file__).with_name("agent")


def install_agent(runtime_root: Path) -> Path:
    """The folder to bind into sandboxes; it holds the package as `agent/`."""
    sources = sorted(AGENT_PACKAGE.glob("*.py"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    versions = runtime_root / ".agent"
    versions.mkdir(mode=0o755, exist_ok=True)
    versions.chmod(0o755)  # whatever the umask: every project uid reads it
    target = versions / digest.hexdigest()[:16]
    if (target / "agent" / "__main__.py").exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=versions))
    try:
        package = staging / "agent"
        package.mkdir()
        for source in sources:
            shutil.copyfile(source, package / source.name)
        # Precompiled, as the sandbox cannot write bytecode next to a read-only source.
        compileall.compile_dir(package, quiet=1)
        # World-readable on purpose: every project uid runs it.
        for folder, dirs, names in os.walk(staging):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)  # noqa: S103
            for name in names:
                os.chmod(os.path.join(folder, name), 0o644)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "agent" / "__main__.py").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
