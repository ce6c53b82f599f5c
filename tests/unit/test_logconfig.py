"""The access log's short cut: lines formatted directly, as the configured formatter would
write them and with query strings left out, and written in batches that arrive within the
flush interval, before any other record, and at exit."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import weakref
from collections.abc import Iterator

import pytest

from calchub import logconfig

ACCESS = '%s - "%s %s HTTP/%s" %d'
ARGS = ("127.0.0.1:5000", "GET", "/auth/verify?email=a%40b.c&token=secret-token", "1.1", 400)
TEXT_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic")
    loggers = {name: logging.getLogger(name) for name in names}
    saved_loggers = {
        name: (list(lg.handlers), lg.propagate, lg.level, list(lg.filters))
        for name, lg in loggers.items()
    }
    yield io.StringIO()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, (handlers, propagate, level, filters) in saved_loggers.items():
        lg = loggers[name]
        lg.handlers[:] = handlers
        lg.propagate = propagate
        lg.setLevel(level)
        lg.filters[:] = filters
    logconfig._access_logger = None


def _configure(stream: io.StringIO, fmt: str, level: str = "info") -> None:
    logconfig.configure_logging(level, fmt, stream)
    # As uvicorn.Config does for `log_level`.
    logging.getLogger("uvicorn.access").setLevel(level.upper())


def _ordinary_line(fmt: str) -> str:
    """What the generic logging path writes for the same access record."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    formatter = (
        logconfig.JsonFormatter() if fmt == "json" else logging.Formatter(logconfig.TEXT_FORMAT)
    )
    handler.setFormatter(formatter)
    logger = logging.Logger("uvicorn.access")
    logger.addFilter(logconfig.DropQueryStrings())
    logger.addHandler(handler)
    logger.info(ACCESS, *ARGS)
    return out.getvalue()


def test_text_lines_are_those_of_the_formatter_without_the_query(stream: io.StringIO) -> None:
    _configure(stream, "text")
    logconfig.access_logger().info(ACCESS, *ARGS)
    logconfig.flush_logs()
    line = stream.getvalue()
    expected = _ordinary_line("text")
    assert re.fullmatch(TEXT_TIME + r" INFO uvicorn\.access: .*\n", line), line
    assert line[24:] == expected[24:]
    assert line[24:] == 'INFO uvicorn.access: 127.0.0.1:5000 - "GET /auth/verify HTTP/1.1" 400\n'
    assert "secret-token" not in line


def test_json_lines_are_those_of_the_formatter_without_the_query(stream: io.StringIO) -> None:
    _configure(stream, "json")
    logconfig.access_logger().info(ACCESS, *ARGS)
    logconfig.flush_logs()
    entry = json.loads(stream.getvalue())
    expected = json.loads(_ordinary_line("json"))
    assert list(entry) == list(expected)
    assert {k: v for k, v in entry.items() if k != "time"} == {
        k: v for k, v in expected.items() if k != "time"
    }
    assert entry["path"] == "/auth/verify"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert "secret-token" not in stream.getvalue()


def test_the_log_level_still_governs_the_access_log(stream: io.StringIO) -> None:
    _configure(stream, "text", "warning")
    logconfig.access_logger().info(ACCESS, *ARGS)
    logconfig.flush_logs()
    assert stream.getvalue() == ""


def test_lines_arrive_within_the_interval_and_before_other_records(
    stream: io.StringIO,
) -> None:
    _configure(stream, "text")
    access = logconfig.access_logger()

    async def serve() -> None:
        for status in (200, 201):
            access.info(ACCESS, "127.0.0.1:5000", "POST", "/api/v1/ping?token=t", "1.1", status)
        assert stream.getvalue() == ""  # waiting for the batch
        await asyncio.sleep(logconfig.FLUSH_INTERVAL_S * 3)
        assert stream.getvalue().count("\n") == 2
        access.info(ACCESS, "127.0.0.1:5000", "POST", "/api/v1/ping", "1.1", 202)
        logging.getLogger("uvicorn.error").warning("something went wrong")

    asyncio.run(serve())
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 3)[3] for line in lines] == [
        'uvicorn.access: 127.0.0.1:5000 - "POST /api/v1/ping HTTP/1.1" 200',
        'uvicorn.access: 127.0.0.1:5000 - "POST /api/v1/ping HTTP/1.1" 201',
        'uvicorn.access: 127.0.0.1:5000 - "POST /api/v1/ping HTTP/1.1" 202',
        "uvicorn.error: something went wrong",
    ]
    assert "token=" not in stream.getvalue()


def test_lines_waiting_at_exit_are_written(stream: io.StringIO) -> None:
    _configure(stream, "json")
    access = logconfig.access_logger()

    async def serve() -> None:
        access.info(ACCESS, *ARGS)

    asyncio.run(serve())  # the loop stops before the batch's timer fires
    assert stream.getvalue() == ""
    # What the interpreter runs at exit, for this handler only.
    logging.shutdown([weakref.ref(h) for h in logging.getLogger().handlers])
    assert json.loads(stream.getvalue())["status"] == 400


def test_a_full_batch_is_written_at_once(stream: io.StringIO) -> None:
    _configure(stream, "text")
    access = logconfig.access_logger()
    long_path = "/" + "a" * 1000

    async def serve() -> int:
        for _ in range(logconfig.FLUSH_BYTES // 1000 + 1):
            access.info(ACCESS, "127.0.0.1:5000", "GET", long_path, "1.1", 404)
        return stream.getvalue().count("\n")

    written = asyncio.run(serve())
    assert written >= logconfig.FLUSH_BYTES // 1100


def test_records_through_the_logging_module_are_batched_and_redacted(
    stream: io.StringIO,
) -> None:
    _configure(stream, "text")
    logging.getLogger("uvicorn.access").info(ACCESS, *ARGS)
    logconfig.flush_logs()
    assert stream.getvalue().endswith('"GET /auth/verify HTTP/1.1" 400\n')
    assert "secret-token" not in stream.getvalue()
