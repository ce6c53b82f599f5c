"""Command line dispatch of the agent."""

from __future__ import annotations

import json
import sys

from .copies import rsh_main
from .once import serve_once
from .server import Config, serve


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[1] == "rsh":
        return rsh_main(argv[2:])
    if len(argv) == 3 and argv[1] == "kernels":
        from .kernels import main as kernels_main

        return kernels_main(json.loads(argv[2]))
    if len(argv) == 3 and argv[1] == "relay":
        from .relay import relay_main

        return relay_main(argv[2:])
    if len(argv) == 3 and argv[1] == "serve":
        return serve(Config(json.loads(argv[2])))
    if len(argv) == 3 and argv[1] == "once":
        return serve_once(Config(json.loads(argv[2])))
    usage = (
        "usage: agent serve CONFIG | agent once CONFIG | agent relay CONFIG_PATH"
        " | agent rsh HOST COMMAND..."
    )
    print(usage, file=sys.stderr)
    return 2
