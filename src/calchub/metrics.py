"""Prometheus metrics: what the server does (requests, mail, project commands) and what the
database holds (running projects, pending copies), served at /metrics.

Labels are bounded: requests are labelled with their route's template (`/api/v1/{event}`
resolved to the event's name only for declared events), never with the raw path, so a
scanner trying random URLs cannot create new series. Figures read from the database are
the site's, the same from every hub sharing it; counters are each process's own.

Who may read them: clients on the loopback interface (a Prometheus on the same machine, or
through an SSH tunnel), and anyone presenting `Authorization: Bearer <metrics_token>` when
that setting is given. Everyone else gets 403, so the default shows nothing to strangers.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator, Mapping
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from calchub import __version__
from calchub.db.tables import copy_paths, projects

if TYPE_CHECKING:
    from calchub.hub import Hub
    from calchub.mail import Mailer
    from calchub.mail.message import Email

log = logging.getLogger("calchub.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

Info("calchub", "The calchub version serving.", registry=REGISTRY).info({"version": __version__})
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Durations:
    """One series' count per bucket (the last for slower than every bound) and their sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.total = 0.0


class RequestFigures:
    """Requests answered (by route template, method and status), their durations and those
    under way, kept in plain numbers and turned into Prometheus series at each scrape.
    Requests are counted on the event loop's thread, where scrapes are answered too, so
    the lock prometheus_client's counters take on every increment buys nothing; with three
    series per request it was a good part of what counting cost."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self._bounds = buckets
        # As prometheus_client writes them ("1.0", "0.005"), so the series keep their names.
        written: Callable[[float], str] = floatToGoString
        self._labels = [written(bound) for bound in buckets] + ["+Inf"]
        self.in_progress = 0
        self.counts: dict[tuple[str, str, str], int] = {}
        self.durations: dict[tuple[str, str], _Durations] = {}

    def record(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        self.counts[key] = self.counts.get(key, 0) + 1
        series = self.durations.get((route, method))
        if series is None:
            series = self.durations[(route, method)] = _Durations(len(self._labels))
        series.counts[bisect_left(self._bounds, seconds)] += 1
        series.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "calchub_http_requests",
            "HTTP requests answered, by route template, method and status.",
            labels=["route", "method", "status"],
        )
        for key, count in self.counts.items():
            requests.add_metric(list(key), count)
        duration = HistogramMetricFamily(
            "calchub_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            labels=["route", "method"],
        )
        for labels, series in self.durations.items():
            buckets = list(zip(self._labels, accumulate(series.counts), strict=True))
            duration.add_metric(list(labels), buckets, series.total)
        yield requests
        yield duration
        yield GaugeMetricFamily(
            "calchub_http_requests_in_progress", "HTTP requests being answered.", self.in_progress
        )


HTTP = RequestFigures(HTTP_BUCKETS)
REGISTRY.register(HTTP)
PROJECTS_RUNNING = Gauge(
    "calchub_projects_running",
    "Projects the database says are running (read at each scrape).",
    registry=REGISTRY,
)
COPIES_PENDING = Gauge(
    "calchub_copies_pending",
    "Copies between projects not finished yet: queued (not started) or running.",
    ["state"],
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "calchub_database_up",
    "1 when the last scrape could read the database, else 0.",
    registry=REGISTRY,
)
DB_POOL = Gauge(
    "calchub_db_pool_connections",
    "This process's database connection pool: size, checked_out, checked_in, overflow.",
    ["state"],
    registry=REGISTRY,
)
MAIL_SENT = Counter(
    "calchub_mail_sent",
    "Emails handed to the mail transport.",
    ["transport"],
    registry=REGISTRY,
)
MAIL_FAILED = Counter(
    "calchub_mail_failed",
    "Emails the mail transport refused or could not take.",
    ["transport"],
    registry=REGISTRY,
)
PROJECT_EXEC = Histogram(
    "calchub_project_exec_duration_seconds",
    "Time commands run in projects took, by outcome (ok or error).",
    ["outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 3600),
    registry=REGISTRY,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"

# Route templates whose path parameter is replaced by its value when the value is one of a
# known set: template -> (parameter, known values, template for an unknown value).
_NAMED: dict[str, tuple[str, frozenset[str], str]] = {}


def name_route(template: str, param: str, names: Collection[str], unknown: str) -> None:
    """Label requests to `template` by the value of `param` when it is one of `names`
    (e.g. each v1 event by its name), and as `unknown` otherwise."""
    _NAMED[template] = (param, frozenset(names), unknown)


def route_label(scope: Scope) -> str:
    """The request's route template (after routing), bounded to the application's routes."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return UNMATCHED
    named = _NAMED.get(template)
    if named is None:
        return template
    param, names, unknown = named
    value = str((scope.get("path_params") or {}).get(param, "")).strip("/")
    if value not in names:
        return unknown
    return template.replace(f"{{{param}:path}}", value).replace(f"{{{param}}}", value)


class MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the application raises
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        HTTP.in_progress += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            HTTP.in_progress -= 1
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"
            HTTP.record(route_label(scope), method, status, time.perf_counter() - started)


# -- hooks for the rest of the server ------------------------------------------------------


def observe_exec(seconds: float, ok: bool) -> None:
    """Record one command run in a project (called where project_exec finishes)."""
    (_EXEC_OK if ok else _EXEC_FAILED).observe(seconds)


# Looked up once: finding a labelled child takes a lock and a dictionary on every exec.
_EXEC_OK = PROJECT_EXEC.labels("ok")
_EXEC_FAILED = PROJECT_EXEC.labels("error")


class CountingMailer:
    """Wraps a mail transport to count what it accepts and refuses."""

    def __init__(self, inner: Mailer, transport: str) -> None:
        self.inner = inner
        self.transport = transport

    async def send(self, email: Email) -> None:
        try:
            await self.inner.send(email)
        except Exception:
            # A cancelled send (shutdown) is no failure of the transport: not counted.
            MAIL_FAILED.labels(self.transport).inc()
            raise
        MAIL_SENT.labels(self.transport).inc()

    async def close(self) -> None:
        await self.inner.close()


# -- the endpoint --------------------------------------------------------------------------


async def _read_database(hub: Hub) -> None:
    """Refresh the figures that live in the database; keep serving the rest if it fails."""
    try:
        async with hub.engine.connect() as conn:
            running = await conn.scalar(
                select(func.count()).select_from(projects).where(projects.c.run_state == "running")
            )
            queued = await conn.scalar(
                select(func.count())
                .select_from(copy_paths)
                .where(copy_paths.c.finished.is_(None), copy_paths.c.started.is_(None))
            )
            copying = await conn.scalar(
                select(func.count())
                .select_from(copy_paths)
                .where(copy_paths.c.finished.is_(None), copy_paths.c.started.is_not(None))
            )
    except Exception as exc:
        log.warning("metrics: cannot read the database: %s", exc)
        DATABASE_UP.set(0)
        return
    DATABASE_UP.set(1)
    PROJECTS_RUNNING.set(running or 0)
    COPIES_PENDING.labels("queued").set(queued or 0)
    COPIES_PENDING.labels("running").set(copying or 0)


def _pool_figures(pool: Any) -> Mapping[str, int]:
    """What the pool tells, if it is a queue pool (SQLAlchemy's default for both backends)."""
    figures: dict[str, int] = {}
    for state, method in (
        ("size", "size"),
        ("checked_out", "checkedout"),
        ("checked_in", "checkedin"),
        ("overflow", "overflow"),
    ):
        reader: Callable[[], Any] | None = getattr(pool, method, None)
        if callable(reader):
            try:
                figures[state] = int(reader())
            except (TypeError, ValueError):
                continue
    if "overflow" in figures:
        # SQLAlchemy counts overflow from -size up; only connections beyond the pool count.
        figures["overflow"] = max(0, figures["overflow"])
    return figures


def allowed(request: Request, token: str) -> bool:
    """Loopback clients, or anyone with the metrics token when one is set."""
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token):
            return True
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics_endpoint(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    if not allowed(request, hub.settings.metrics_token):
        return JSONResponse(
            {"error": "metrics are served to loopback clients, or with the metrics token"},
            status_code=403,
        )
    await _read_database(hub)
    for state, value in _pool_figures(hub.engine.pool).items():
        DB_POOL.labels(state).set(value)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
