"""``qslm serve``: the HTTP service tutoring backends call.

One model per process: solves run on worker threads fed by a bounded queue (one at a time by default;
with ``workers`` > 1 their steps are generated as one batch), see :mod:`orchestrator.server_queue`; a full
queue answers 429 with ``Retry-After``. Traces are written to
SQLite (:mod:`orchestrator.server_store`) before the answer is sent. Request shapes and limits live in
:mod:`orchestrator.server_models`, the work behind the routes in :mod:`orchestrator.server_service`,
Prometheus metrics in :mod:`orchestrator.server_metrics`.

Endpoints: ``POST /v1/solve`` (JSON, or server-sent events with ``"stream": true``), ``POST /v1/check``,
``GET /v1/traces/{id}``, ``GET /v1/traces/{id}/view``, ``GET /v1/policies``, ``GET /healthz``, ``GET /metrics``.
Errors of the library become status codes here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from orchestrator.errors import PolicyError, QslmError
from orchestrator.server_cli import DEFAULT_HOST, DEFAULT_QUEUE_SIZE
from orchestrator.server_models import (
    TRACE_ID_RE,
    CheckRequest,
    CheckResponse,
    ErrorMessage,
    Health,
    LimitError,
    Limits,
    PolicyInfo,
    SolveRequest,
    SolveResponse,
    TraceRecord,
)
from orchestrator.server_queue import QueueFullError
from orchestrator.server_service import (
    POLL_S,
    MetricsMiddleware,
    Service,
    SolverOrFactory,
    json_response,
    unprocessable,
)
from policies import list_policies, load_policy

_VALIDATION: dict[str, Any] = {"description": "Validation error, or a limit exceeded (the message names it)."}


def create_app(
    orchestrator_or_factory: SolverOrFactory,
    *,
    db_path: str | Path,
    policy_dirs: Sequence[str | Path] = (),
    default_policy: str = "default",
    queue_size: int = DEFAULT_QUEUE_SIZE,
    limits: Limits | None = None,
    poll_s: float = POLL_S,
    workers: int = 1,
) -> FastAPI:
    """The app around one loaded model (an ``Orchestrator``, or a factory called once at startup).

    ``workers`` solves run at once, their steps generated as one batch (see :mod:`orchestrator.batching`).
    """
    svc = Service(
        orchestrator_or_factory,
        db_path=db_path,
        policy_dirs=policy_dirs,
        default_policy=default_policy,
        queue_size=queue_size,
        limits=limits or Limits(),
        poll_s=poll_s,
        workers=workers,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(svc.start)
        try:
            yield
        finally:
            await asyncio.to_thread(svc.stop)

    app = FastAPI(
        title="quantized-slm",
        version="1.0",
        description="Step-by-step solving with a quantized small language model, with verifiable traces.",
        lifespan=lifespan,
    )
    app.state.service = svc
    app.add_middleware(MetricsMiddleware, metrics=svc.metrics)

    @app.exception_handler(LimitError)
    async def _limit(_: Request, exc: LimitError) -> Response:
        return json_response({"detail": exc.detail()}, 422)

    @app.exception_handler(QslmError)
    async def _qslm(_: Request, exc: QslmError) -> Response:
        loc = ("policy",) if isinstance(exc, PolicyError) else ()
        return unprocessable(str(exc), loc, "policy_error" if loc else "invalid_request")

    err: dict[int | str, dict[str, Any]] = {
        404: {"model": ErrorMessage, "description": "No such trace.", "content": {"application/json": {}}},
        422: _VALIDATION,
    }

    @app.post(
        "/v1/solve",
        response_model=SolveResponse,
        summary="Solve a question step by step",
        responses={
            200: {
                "description": "The result (JSON), or server-sent events ending with `event: result`.",
                "content": {"text/event-stream": {}},  # events: accepted, monitor, ..., step, final, result
            },
            422: _VALIDATION,
            429: {
                "model": ErrorMessage,
                "description": "The queue is full.",
                "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
            },
            503: {"model": ErrorMessage, "description": "The server is shutting down."},
        },
    )
    async def solve(req: SolveRequest, request: Request) -> Response:
        """Queue a solve; answer its result with a trace id. A deadline returns the steps so far, partial."""
        policy = svc.resolve_policy(req)
        stream = req.stream or "text/event-stream" in request.headers.get("accept", "")
        job = svc.new_job(req, policy, stream=stream)
        try:
            svc.worker.submit(job)
        except QueueFullError as exc:
            svc.metrics.inc("qslm_queue_rejections_total")
            return json_response({"detail": str(exc)}, 429, headers={"Retry-After": str(exc.retry_after)})
        if stream:
            headers = {"Cache-Control": "no-cache", "X-Request-Id": job.id}
            return StreamingResponse(svc.events(job), media_type="text/event-stream", headers=headers)
        outcome = await svc.wait(job, request)
        if outcome is None:
            return Response(status_code=499)  # nobody is listening
        return json_response(outcome.body, outcome.status)

    @app.post("/v1/check", response_model=CheckResponse, responses={422: _VALIDATION}, summary="Check one step")
    async def check(req: CheckRequest) -> Response:
        """Judge the arithmetic claims of one step: correct, wrong (with the corrected text) or unknown."""
        from verifiers import check_step

        if len(req.text) > svc.limits.max_check_chars:
            raise LimitError(
                f"the text has {len(req.text)} characters; the limit max_check_chars is {svc.limits.max_check_chars}",
                limit="max_check_chars",
                loc=("text",),
                value=len(req.text),
            )
        verdict = await asyncio.to_thread(check_step, req.text)
        svc.metrics.inc("qslm_checks_total", status=verdict.status)
        body = {
            "status": verdict.status,
            "claims": [c.to_dict() for c in verdict.claims],
            "corrected_text": verdict.corrected_text,
            "reason": verdict.reason,
        }
        return json_response(body)

    def _record(trace_id: str) -> dict[str, Any]:
        assert svc.store is not None
        rec = svc.store.get(trace_id)
        if rec is None:
            raise _NotFound(f"no trace with id {trace_id!r}")
        return rec

    trace_id_param = PathParam(pattern=TRACE_ID_RE, description="The trace id a solve returned.")

    @app.get("/v1/traces/{trace_id}", response_model=TraceRecord, responses=err, summary="A stored trace")
    async def get_trace(trace_id: str = trace_id_param) -> Response:
        return json_response(_record(trace_id))

    @app.get(
        "/v1/traces/{trace_id}/view",
        response_class=HTMLResponse,
        responses=err,
        summary="A stored trace as one self-contained HTML page",
    )
    async def view_trace(trace_id: str = trace_id_param) -> Response:
        from orchestrator.trace import Trace

        rec = _record(trace_id)
        page = Trace.from_dict(rec["trace"]).to_html(f"Trace {trace_id}")
        return HTMLResponse(page)

    @app.exception_handler(_NotFound)
    async def _not_found(_: Request, exc: _NotFound) -> Response:
        return json_response({"detail": str(exc)}, 404)

    @app.get("/v1/policies", response_model=list[PolicyInfo], summary="Policies this server can run")
    async def policies() -> Response:
        out = []
        for name in list_policies(svc.policy_dirs):
            try:
                out.append({"name": name, "description": load_policy(name, svc.policy_dirs).description})
            except PolicyError as exc:
                out.append({"name": name, "description": "", "error": str(exc)})
        return json_response(out)

    @app.get("/healthz", response_model=Health, summary="Liveness, model and queue depth")
    async def healthz() -> Response:
        return json_response(
            {
                "status": "ok",
                "model": svc.model,
                "quant": svc.quant,
                "queue_depth": svc.worker.depth,
                "queue_size": svc.worker.queue_size,
                "busy": svc.worker.busy,
                "workers": svc.worker.workers,
                "running": svc.worker.running,
                "limits": svc.limits.to_dict(),
            }
        )

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def metrics() -> Response:
        return PlainTextResponse(svc.metrics.render(), media_type="text/plain; version=0.0.4")

    return app


class _NotFound(Exception):
    """An unknown trace id (404)."""


# ----------------------------------------------------------------- running


@dataclass
class BackgroundServer:
    """A uvicorn server on a thread (tests and the load bench): ``url`` to call, ``stop()`` to end it."""

    server: Any
    thread: threading.Thread
    url: str

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def serve_in_background(
    app: FastAPI, *, host: str = DEFAULT_HOST, port: int = 0, timeout: float = 120.0
) -> BackgroundServer:
    """Start ``app`` on ``host:port`` (0 picks a free port) in a thread and wait until it accepts requests."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="qslm-uvicorn", daemon=True)
    thread.start()
    end = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            server.should_exit = True
            raise RuntimeError("the server did not start (see the log above)")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    return BackgroundServer(server, thread, f"http://{host}:{bound}")
