"""Where the server's log goes and how it looks: standard error, as text lines or JSON lines.

Standard error is what systemd's journal (and docker, and a terminal) collects, so calchub
writes no log files of its own. Uvicorn's loggers are routed through the same handler, so
its access log and errors share the chosen format.

The access log is the one record written for every request, so it takes a short cut: the
line is formatted directly (`AccessLogger`, no LogRecord, filter or generic formatter) and
lines are written in batches, at most `FLUSH_INTERVAL_S` or `FLUSH_BYTES` after the first of
a batch, before any other record (so the order stays as it happened), and at exit. A clean
stop loses no line; a killed process loses at most the last interval's lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import urlsplit

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOGGER = "uvicorn.access"
FLUSH_INTERVAL_S = 0.1
FLUSH_BYTES = 64 * 1024

# Uvicorn's access records carry (client, method, path, http version, status) as arguments.
_ACCESS_ARGS = ("client", "method", "path", "http_version", "status")

_ExcInfo = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)


def without_query(path: str) -> str:
    """The path of an access record with its query string left out: verification links
    carry tokens there."""
    return urlsplit(path).path if "?" in path else path


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the access fields."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        access = (
            args
            if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5
            else None
        )
        return json_line(
            datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            record.levelname.lower(),
            record.name,
            record.getMessage(),
            access,
            self.formatException(record.exc_info) if record.exc_info else None,
        )


def json_line(
    time_text: str,
    level: str,
    logger: str,
    message: str,
    access: tuple[object, ...] | None = None,
    exception: str | None = None,
) -> str:
    """One record as JSON: time, level, logger, message, then uvicorn's five access
    arguments by name when it is an access record, and the exception when there is one."""
    entry: dict[str, Any] = {
        "time": time_text,
        "level": level,
        "logger": logger,
        "message": message,
    }
    if access is not None:
        entry.update(zip(_ACCESS_ARGS, access, strict=True))
    if exception is not None:
        entry["exception"] = exception
    return json.dumps(entry, default=str, ensure_ascii=False)


class DropQueryStrings(logging.Filter):
    """Keep query strings out of the access log: verification links carry tokens there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == len(_ACCESS_ARGS):
            path = str(args[2])
            if "?" in path:
                record.args = (*args[:2], without_query(path), *args[3:])
        return True


class BatchingHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes access lines in batches (one write for many requests
    rather than one each) and every other record at once, after the access lines before it."""

    def __init__(
        self,
        stream: TextIO,
        interval_s: float = FLUSH_INTERVAL_S,
        limit_bytes: int = FLUSH_BYTES,
    ) -> None:
        super().__init__(stream)
        self.interval_s = interval_s
        self.limit_bytes = limit_bytes
        self._pending: list[str] = []
        self._pending_size = 0
        # The loop whose timer will write the current batch; None when none is armed.
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def add_access_line(self, line: str) -> None:
        """Queue one formatted access line (without its newline) for the next batch."""
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            self._pending_size += len(line) + 1
            full = self._pending_size >= self.limit_bytes
        if full:
            self.flush()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop to wait on: write now
            self.flush()
            return
        # A timer on a loop that has since stopped would never fire: arm one on this loop.
        if self._timer_loop is not loop:
            self._timer_loop = loop
            loop.call_later(self.interval_s, self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == ACCESS_LOGGER and record.levelno == logging.INFO:
            try:
                line = self.format(record)
            except Exception:  # as StreamHandler: a bad record must not stop the server
                self.handleError(record)
                return
            self.add_access_line(line)
            return
        self.flush()
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._timer_loop = None
            if self._pending:
                batch = "\n".join(self._pending) + "\n"
                self._pending.clear()
                self._pending_size = 0
                # A closed or broken stream loses the batch but must not stop the server.
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write(batch)
            super().flush()


class AccessLogger(logging.Logger):
    """Uvicorn's access logger as far as its HTTP protocol uses it (`info` with uvicorn's
    five arguments), formatting the line the chosen formatter would give, redacted as
    DropQueryStrings does, straight into the BatchingHandler's next batch.

    It answers to the real "uvicorn.access" logger: nothing is written when that logger is
    not enabled for info (`--log-level warning`), and any other call goes through it."""

    def __init__(self, handler: BatchingHandler, json_lines: bool) -> None:
        super().__init__(ACCESS_LOGGER)
        self._real = logging.getLogger(ACCESS_LOGGER)
        self._handler = handler
        self._json = json_lines
        self._second = -1
        self._stamp = ""

    def hasHandlers(self) -> bool:
        return self._real.hasHandlers()

    def isEnabledFor(self, level: int) -> bool:
        return self._real.isEnabledFor(level)

    def info(
        self,
        msg: object,
        *args: object,
        exc_info: _ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        if len(args) != len(_ACCESS_ARGS) or exc_info or stack_info or extra:
            self._real.info(msg, *args, exc_info=exc_info, stack_info=stack_info, extra=extra)
            return
        if not self._real.isEnabledFor(logging.INFO):
            return
        client, method, path, http_version, status = args
        path = without_query(str(path))
        try:
            message = str(msg) % (client, method, path, http_version, status)
        except (TypeError, ValueError):
            self._real.info(msg, *args)
            return
        now = time.time()
        if self._json:
            access = (client, method, path, http_version, status)
            line = json_line(self._time(now), "info", ACCESS_LOGGER, message, access)
        else:
            line = f"{self._time(now)} INFO {ACCESS_LOGGER}: {message}"
        self._handler.add_access_line(line)

    def _time(self, now: float) -> str:
        """The record's time as the formatter writes it; the part up to the second is
        formatted once a second."""
        second = int(now)
        if second != self._second:
            self._second = second
            if self._json:
                self._stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            else:
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        if self._json:
            return f"{self._stamp}.{millis:03d}+00:00"
        return f"{self._stamp},{millis:03d}"


_access_logger: logging.Logger | None = None


def access_logger() -> logging.Logger:
    """The logger uvicorn's HTTP protocol should write access records to: the direct one
    when configure_logging set up the batching handler, else the ordinary logger."""
    return _access_logger or logging.getLogger(ACCESS_LOGGER)


def flush_logs() -> None:
    """Write out any access lines still waiting for their batch."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Send every record at `level` or above to standard error (or `stream`) in the format
    `fmt`."""
    global _access_logger
    handler = BatchingHandler(stream if stream is not None else sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        old.flush()
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Migrations announce every step at info; operators need them only when they fail.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", ACCESS_LOGGER):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryStrings) for f in access.filters):
        access.addFilter(DropQueryStrings())
    _access_logger = AccessLogger(handler, json_lines=fmt == "json")
