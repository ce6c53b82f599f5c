"""The agent at rest: all that is left of it while its project is quiet.

Once the pool's workers have ended, the pool re-executes itself as a fresh interpreter that
runs `rest_main` (see `server.Pool.rest`): one that has imported next to nothing, because
every module it holds, and every part of the interpreter it runs, is memory that each idle
project keeps. It stays PID 1 (an exec keeps the pid, the children and the listening socket)
and waits for a connection or the idle timeout. Its children need no reaping: the pool left
SIGCHLD ignored, so the kernel reaps them. A connection makes it import the rest of the agent
in place and become the pool again (`server.resume`), whose workers serve it; at the idle
timeout it ends, and every process of the sandbox with it.
"""

# Built in, and loaded by every interpreter at start: `signal` would add its imports.
import _signal  # type: ignore[import-not-found]
import select
import time

# Signals that end PID 1 of the sandbox, and with it the project (a namespace's PID 1
# ignores those it has no handler for).
END_SIGNALS = (_signal.SIGTERM, _signal.SIGHUP)

# What the interpreter runs (`python3 -I -S -c REST_ENTRY PACKAGE_PARENT PACKAGE ARGS...`):
# no script to compile and no launcher to import on the way.
REST_ENTRY = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "rest = __import__(sys.argv[2] + '.rest', fromlist=['rest_main']); "
    "sys.exit(rest.rest_main(sys.argv[3:]))"
)


def rest_main(argv: list[str]) -> int:
    """argv: the listening socket's fd, the idle timeout (0: none), the monotonic time of the
    last user activity, and the agent's configuration (JSON, handed on untouched)."""
    listen_fd, idle_timeout_s, last_activity = int(argv[0]), float(argv[1]), float(argv[2])
    for signum in END_SIGNALS:
        _signal.signal(signum, end)
    timeout = None
    while True:
        if idle_timeout_s > 0:
            timeout = last_activity + idle_timeout_s - time.monotonic()
            if timeout <= 0:
                return 0
        if select.select([listen_fd], [], [], timeout)[0]:
            break
    from .server import resume

    return resume(argv[3], last_activity)


def end(signum: int, _frame: object) -> None:
    """The handler of END_SIGNALS."""
    raise SystemExit(128 + signum)
