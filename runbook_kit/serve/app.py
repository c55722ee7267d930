"""The receiver: an ASGI app (Starlette) that verifies, normalizes and stores alerts before answering.

    POST /webhook/{alertmanager|grafana|sns|pagerduty}   202 stored · 4xx refused for good · 503 retry
    GET  /healthz                                       200 when the queue answers, else 503
    GET  /metrics                                       Prometheus text format

Answers follow what senders do with them: Alertmanager (and Grafana, SNS, PagerDuty) retry on 5xx and
drop on 4xx, so a 5xx is given only when the alert could not be stored (then a retry is right), and a
request that can never succeed (unauthenticated, forged, malformed, too large) gets a 4xx with one line
saying why. 202 means: on disk, deduplicated, routed, its run queued. Deliveries that arrive together
are committed together (intake.GroupCommit: one fsync for the lot), each in its own savepoint.
Bodies are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.request
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runbook_kit.redact import Redactor
from runbook_kit.serve import intake, recovery, timeline
from runbook_kit.serve.config import ServeConfig
from runbook_kit.serve.metrics import Metrics
from runbook_kit.serve.queue import Queue
from runbook_kit.serve.sources import Rejected, Request, alertmanager, grafana, pagerduty, sns
from runbook_kit.serve.worker import Worker
from runbook_kit.store import open_store

__all__ = ["create_app"]

log = logging.getLogger("runbook.serve")
SOURCES: dict[str, ModuleType] = {
    "alertmanager": alertmanager,
    "grafana": grafana,
    "pagerduty": pagerduty,
    "sns": sns,
}


class _TooLarge(Exception):
    pass


async def _body(request: HTTPRequest, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _confirm_subscription(url: str, queue: Queue) -> None:
    """GET the SubscribeURL of an allow-listed topic (already checked: https, sns.<region>.amazonaws.com)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - checked by sns.valid_sns_url
            ok, why = 200 <= response.status < 300, f"HTTP {response.status}"
    except OSError as exc:
        ok, why = False, str(exc)[:200]
    with queue.transaction() as tx:
        tx.event(
            kind="sns-subscription",
            text=f"sns: subscription {'confirmed' if ok else 'NOT confirmed'} ({why})",
        )


def create_app(config: ServeConfig, *, queue: Queue | None = None) -> Starlette:
    metrics = Metrics()
    state: dict[str, Any] = {}

    def _queue() -> Queue:
        q: Queue = state["queue"]
        return q

    async def webhook(request: HTTPRequest) -> Response:
        started = time.monotonic()
        name = request.path_params["source"]
        source_config = config.sources.get(name)
        if name not in SOURCES or source_config is None:
            return JSONResponse({"error": f"source {name!r} is not configured here"}, status_code=404)
        try:
            body = await _body(request, config.max_body)
        except _TooLarge:
            metrics.reject(name, 413)
            log.warning("rejected", extra={"fields": {"source": name, "code": 413}})
            return JSONResponse({"error": f"body larger than {config.max_body} bytes"}, status_code=413)
        incoming = Request(headers={k.lower(): v for k, v in request.headers.items()}, body=body)
        try:
            if name == "sns":  # may fetch a signing certificate: not on the event loop
                delivery = await asyncio.to_thread(SOURCES[name].receive, source_config, incoming)
            else:
                delivery = SOURCES[name].receive(source_config, incoming)
        except Rejected as exc:
            metrics.reject(name, exc.status)
            log.warning("rejected", extra={"fields": {"source": name, "code": exc.status, "why": str(exc)}})
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except Exception as exc:  # a body shaped in a way no check foresaw: refused, never a crash
            metrics.reject(name, 400)
            log.warning(
                "rejected",
                extra={
                    "fields": {"source": name, "code": 400, "why": f"{type(exc).__name__}: {str(exc)[:200]}"}
                },
            )
            return JSONResponse(
                {"error": f"{name}: the body could not be read as a notification"}, status_code=400
            )
        try:
            admitted = await state["writer"].admit(delivery)
        except Exception as exc:
            metrics.store_failed()
            log.error("not stored", extra={"fields": {"source": name, "error": str(exc)[:300]}})
            return JSONResponse({"error": "the alert could not be stored; retry"}, status_code=503)
        metrics.stored(name, stored=admitted.stored, duplicates=admitted.duplicates)
        if delivery.confirm_url:
            task = asyncio.create_task(
                asyncio.to_thread(_confirm_subscription, delivery.confirm_url, _queue())
            )
            state.setdefault("background", set()).add(task)
            task.add_done_callback(state["background"].discard)
        if admitted.queued and "worker" in state:
            state["worker"].wake()
        if admitted.stored and "timeline" in state:
            state["timeline"].wake()
        log.info(
            "stored",
            extra={
                "fields": {
                    "source": name,
                    "alerts": len(delivery.events),
                    "stored": admitted.stored,
                    "duplicates": admitted.duplicates,
                    "queued": admitted.queued,
                    "cancelled": admitted.cancelled,
                    "ms": round((time.monotonic() - started) * 1000, 2),
                }
            },
        )
        return JSONResponse(
            {
                "stored": admitted.stored,
                "duplicates": admitted.duplicates,
                "queued": admitted.queued,
                "cancelled": admitted.cancelled,
                "runs": admitted.run_ids,
            },
            status_code=202,
        )

    async def healthz(request: HTTPRequest) -> Response:
        try:
            depth = await asyncio.to_thread(_queue().depth)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "error": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok", "queue_depth": depth})

    async def metrics_view(request: HTTPRequest) -> Response:
        q = _queue()
        by_state, depth = await asyncio.to_thread(lambda: (q.runs_by_state(), q.depth()))
        return PlainTextResponse(
            metrics.render(runs_by_state=by_state, queue_depth=depth), media_type="text/plain; version=0.0.4"
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        q = queue or Queue(config.queue)
        state["queue"] = q
        interrupted = await asyncio.to_thread(q.recover)
        if interrupted:
            marked = await asyncio.to_thread(recovery.finalize, interrupted, open_store(config.store))
            log.warning(
                "interrupted runs marked",
                extra={"fields": {"runs": [r["id"] for r in interrupted], "records": marked}},
            )
        state["writer"] = intake.GroupCommit(
            q, routes=config.routes, storm_per_minute=config.storm_per_minute
        )
        if config.executor == "kubernetes":  # Jobs started before this start: their outcome, never re-run
            from runbook_kit.serve import jobs

            state["reconciled"] = await jobs.reconcile(q, config)
        worker = Worker(queue=q, config=config, metrics=metrics, child_env=_child_env(config))
        state["worker"] = worker
        task = asyncio.create_task(worker.run())
        forwarder = timeline.Forwarder(q, open_store(config.store))
        state["timeline"] = forwarder
        forwarding = asyncio.create_task(forwarder.run())
        try:
            yield
        finally:
            await worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            forwarder.stop()  # one last copy of the lines the stopped runs left, bounded
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(forwarding, timeout=10)
            await asyncio.to_thread(state["writer"].close)
            if queue is None:
                q.close()

    return Starlette(
        routes=[
            Route("/webhook/{source}", webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_view, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _child_env(config: ServeConfig) -> dict[str, str]:
    """The runs' environment: the receiver's, without the variables its own credentials came from."""
    import os

    return {k: v for k, v in os.environ.items() if k not in config.secret_env}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message and the record's `fields`, passed through the
    same redactor as the records (the receiver's own credentials are known values to it)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor.from_environment()

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        return self.redactor.text(json.dumps(data, default=str))
