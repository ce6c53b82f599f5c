"""What the agent uses of the signal module, from its C core (`_signal`): signal.py turns
every signal number into an enum when it is imported, and imports enum for that, a cost
every project's start would pay. The numbers are plain ints here. The checker reads the
signal module itself."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from signal import (
        SIG_DFL,
        SIG_IGN,
        SIGCHLD,
        SIGHUP,
        SIGKILL,
        SIGPIPE,
        SIGTERM,
        SIGUSR1,
        SIGXFSZ,
        set_wakeup_fd,
        signal,
    )
else:
    from _signal import (
        SIG_DFL,
        SIG_IGN,
        SIGCHLD,
        SIGHUP,
        SIGKILL,
        SIGPIPE,
        SIGTERM,
        SIGUSR1,
        SIGXFSZ,
        set_wakeup_fd,
        signal,
    )

__all__ = [
    "SIGCHLD",
    "SIGHUP",
    "SIGKILL",
    "SIGPIPE",
    "SIGTERM",
    "SIGUSR1",
    "SIGXFSZ",
    "SIG_DFL",
    "SIG_IGN",
    "set_wakeup_fd",
    "signal",
]
