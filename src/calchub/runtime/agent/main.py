"""Command line dispatch of the agent."""

from __future__ import annotations

import sys

from .jsonc import loads


def main(argv: list[str]) -> int:
    # Each command imports only what it runs (see server.py).
    if len(argv) >= 2 and argv[1] == "rsh":
        from .copies import rsh_main

        return rsh_main(argv[2:])
    if len(argv) == 3 and argv[1] == "kernels":
        from .kernels import main as kernels_main

        return kernels_main(loads(argv[2]))
    if len(argv) == 3 and argv[1] == "relay":
        from .relay import relay_main

        return relay_main(argv[2:])
    if len(argv) == 3 and argv[1] == "serve":
        from .server import Config, serve

        return serve(Config(loads(argv[2])))
    if len(argv) == 3 and argv[1] == "once":
        from .once import serve_once
        from .project import Config

        return serve_once(Config(loads(argv[2])))
    usage = (
        "usage: agent serve CONFIG | agent once CONFIG | agent relay CONFIG_PATH"
        " | agent rsh HOST COMMAND..."
    )
    print(usage, file=sys.stderr)
    return 2
