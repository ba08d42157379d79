"""Prometheus metrics: request and per-branch latency, candidate counts, degraded branches, errors.

Each app owns its own `CollectorRegistry`, so several apps (tests, several services in one process) never
clash over metric names.

With several worker processes (`serve --workers N`), `/metrics` must count every worker's requests, not
only those of the worker that happens to answer the scrape. prometheus_client's multiprocess mode does it:
when `PROMETHEUS_MULTIPROC_DIR` is set before prometheus_client is imported (the serve command sets it to a
fresh folder per run), every process writes its values to memory-mapped files there, and the exposition
sums them with a `MultiProcessCollector`. Counters and histograms need nothing more; a gauge added here
would need a `multiprocess_mode` (e.g. ``livesum``) to say how workers' values combine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from api.workers import MULTIPROC_ENV
from retrieval.service import SearchAnswer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COUNT_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 250, 500, 1000)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # prometheus_client chose its value class from the same variable when it was imported
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV) or None
        self.requests = Counter(
            "searchrec_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "searchrec_request_seconds",
            "Request latency.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.branch_latency = Histogram(
            "searchrec_branch_seconds",
            "Recall branch latency.",
            ["collection", "branch"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.candidates = Histogram(
            "searchrec_branch_candidates",
            "Candidates returned by a recall branch.",
            ["collection", "branch"],
            buckets=COUNT_BUCKETS,
            registry=self.registry,
        )
        self.degraded = Counter(
            "searchrec_degraded",
            "Branches dropped from an answer.",
            ["collection", "branch"],
            registry=self.registry,
        )
        self.errors = Counter(
            "searchrec_errors", "Requests that failed with a 5xx.", ["route"], registry=self.registry
        )

    def observe_answer(self, collection: str, answer: SearchAnswer) -> None:
        for branch, ms in answer.branch_ms.items():
            self.branch_latency.labels(collection, branch).observe(ms / 1000)
        for branch, count in answer.branch_counts.items():
            self.candidates.labels(collection, branch).observe(count)
        for branch in answer.degraded:
            self.degraded.labels(collection, branch).inc()

    def exposition(self) -> Response:
        """This process's metrics, or with a multiprocess folder, the sum over every worker's."""
        registry = self.registry
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> Metrics:
    metrics = Metrics()

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            route = _route(request)
            metrics.errors.labels(route).inc()
            metrics.requests.labels(route, "500").inc()
            raise
        route = _route(request)
        metrics.latency.labels(route).observe(time.perf_counter() - start)
        metrics.requests.labels(route, str(response.status_code)).inc()
        if response.status_code >= 500:
            metrics.errors.labels(route).inc()
        return response

    return metrics


def _route(request: Request) -> str:
    """The route template (`/collections/{name}/search`), not the raw path, to keep label cardinality low."""
    route = request.scope.get("route")
    return getattr(route, "path", "unmatched")
