"""Request figures come out as the Prometheus series a labelled Counter and Histogram give."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from calchub.metrics import HTTP_BUCKETS, RequestFigures

DURATIONS = (0.001, 0.005, 0.0051, 0.3, 1, 59.9, 60, 61, 1000)


def _lines(registry: CollectorRegistry) -> list[str]:
    # prometheus_client's own series also carry a creation time, which is not kept here.
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_the_series_match_prometheus_clients() -> None:
    ours = CollectorRegistry()
    figures = RequestFigures(HTTP_BUCKETS)
    ours.register(figures)
    theirs = CollectorRegistry()
    count = Counter(
        "calchub_http_requests",
        "HTTP requests answered, by route template, method and status.",
        ["route", "method", "status"],
        registry=theirs,
    )
    duration = Histogram(
        "calchub_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template.",
        ["route", "method"],
        buckets=HTTP_BUCKETS,
        registry=theirs,
    )
    for route, status in (("/api/v1/ping", 200), ("/api/v1/{event}", 400)):
        for seconds in DURATIONS:
            figures.record(route, "POST", status, seconds)
            count.labels(route, "POST", str(status)).inc()
            duration.labels(route, "POST").observe(seconds)
    ours_lines = _lines(ours)
    assert "calchub_http_requests_in_progress 0.0" in ours_lines
    in_progress = [line for line in ours_lines if "in_progress" in line]
    assert [line for line in ours_lines if line not in in_progress] == _lines(theirs)
