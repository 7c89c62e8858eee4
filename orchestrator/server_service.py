"""The server's state and the work behind its routes: policies, jobs, waiting, events, partial results.

:class:`Service` holds the solver (one model per process), the worker, the trace store, the metrics and
the limits; :mod:`orchestrator.server` wires it to routes.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.server_metrics import Metrics
from orchestrator.server_models import (
    LimitError,
    Limits,
    SolveRequest,
    apply_options,
    cap_policy,
    check_inline_policy,
    check_limits,
    check_policy_limits,
)
from orchestrator.server_queue import DONE, Job, Outcome, SolveWorker
from orchestrator.server_store import TraceStore
from policies import Policy, list_policies, load_policy, policy_from_dict

log = structlog.get_logger(__name__)

POLL_S = 0.25  # how often a waiting request checks its client; also the SSE keep-alive period
INTERVENTION_EVENTS = ("resample", "escalate", "correct", "flag", "repair_resample")


class Solver(Protocol):
    """What the server needs of an :class:`~orchestrator.api.Orchestrator` (tests wrap one)."""

    def solve(self, question: str, *, policy: Any = ..., seed: Any = ..., on_event: Any = ...) -> Any: ...


SolverOrFactory = Solver | Callable[[], Solver]


def _safe(value: Any) -> Any:
    """JSON-ready copy: non-finite floats become None (model statistics can overflow)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(_safe(body), ensure_ascii=True, allow_nan=False)
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def unprocessable(msg: str, loc: Sequence[str | int], kind: str) -> Response:
    return json_response({"detail": [{"loc": ["body", *loc], "msg": msg, "type": kind}]}, 422)


def _sse(event: str, data: Any, seq: int) -> str:
    return f"id: {seq}\nevent: {event}\ndata: {json.dumps(_safe(data), ensure_ascii=True, allow_nan=False)}\n\n"


class Service:
    """Everything one app holds: the solver, worker, store, metrics, policies and limits."""

    def __init__(
        self,
        solver: SolverOrFactory,
        *,
        db_path: str | Path,
        policy_dirs: Sequence[str | Path],
        default_policy: str,
        queue_size: int,
        limits: Limits,
        poll_s: float,
        workers: int = 1,
    ) -> None:
        self._solver_arg = solver
        self.solver: Solver | None = None
        self.db_path = db_path
        self.store: TraceStore | None = None
        self.policy_dirs = [Path(d).expanduser() for d in policy_dirs]
        self.default_policy = default_policy
        self.limits = limits
        self.poll_s = poll_s
        self.metrics = Metrics()
        self.worker = SolveWorker(
            self._run_solve, self._partial, queue_size=queue_size, metrics=self.metrics, workers=workers
        )
        self.metrics.gauge("qslm_queue_depth", lambda: float(self.worker.depth))
        self.metrics.gauge("qslm_busy", lambda: float(self.worker.busy))
        self.metrics.gauge("qslm_running", lambda: float(self.worker.running))
        for kind in INTERVENTION_EVENTS:  # present from the start, so rates work from zero
            self.metrics.inc("qslm_interventions_total", 0.0, kind=kind)
        self.metrics.inc("qslm_queue_rejections_total", 0.0)
        self.model = "unknown"
        self.quant = "unknown"

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        solver = self._solver_arg
        self.solver = solver if hasattr(solver, "solve") else solver()
        loaded = getattr(self.solver, "loaded", None)
        self.model = str(getattr(loaded, "name", type(self.solver).__name__))
        self.quant = str(getattr(getattr(loaded, "quant", None), "name", "none"))
        self.store = TraceStore(self.db_path)
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        if self.store is not None:
            self.store.close()

    # ------------------------------------------------------------- requests

    def resolve_policy(self, req: SolveRequest) -> Policy:
        """The policy a request runs under, checked against the limits (LimitError / PolicyError)."""
        check_limits(req, self.limits)
        if isinstance(req.policy, dict):
            check_inline_policy(req.policy)
            policy = policy_from_dict(req.policy, source="inline", search_dirs=self.policy_dirs)
            check_policy_limits(policy, req.policy, self.limits)
            policy = cap_policy(policy, self.limits)
        else:
            name = req.policy or self.default_policy
            known = list_policies(self.policy_dirs)
            if name not in known:
                raise LimitError(
                    f"unknown policy {name!r}; known: {', '.join(known)}",
                    limit="policy",
                    loc=("policy",),
                    kind="unknown_policy",
                )
            policy = cap_policy(load_policy(name, self.policy_dirs), self.limits)
        self._check_runnable(policy)
        return apply_options(policy, req)

    def _check_runnable(self, policy: Policy) -> None:
        """Fail before queueing what would fail in the worker: unknown verifiers, bad layer indices."""
        from orchestrator.verdicts import resolve_verifiers

        resolve_verifiers(policy.verifiers)
        escalation_layers = getattr(self.solver, "escalation_layers", None)
        if policy.escalation.enabled and callable(escalation_layers) and getattr(self.solver, "loaded", None):
            try:
                escalation_layers(policy)
            except ValueError as exc:
                raise LimitError(str(exc), limit="escalation.layers", loc=("policy", "escalation", "layers")) from None

    def new_job(self, req: SolveRequest, policy: Policy, *, stream: bool) -> Job:
        loop = asyncio.get_running_loop()
        deadline_s = req.deadline_s if req.deadline_s is not None else self.limits.default_deadline_s
        return Job(
            question=req.question.strip(),
            policy=policy,
            seed=req.seed,
            deadline=time.monotonic() + deadline_s,
            loop=loop,
            future=loop.create_future(),
            events_queue=asyncio.Queue() if stream else None,
        )

    async def wait(self, job: Job, request: Request) -> Outcome | None:
        """The job's outcome, or None when the client went away first (the job is then cancelled)."""
        try:
            while True:
                done, _ = await asyncio.wait({job.future}, timeout=self.poll_s)
                if done:
                    return job.future.result()
                if await request.is_disconnected():
                    self._client_gone(job)
                    return None
        except asyncio.CancelledError:
            self._client_gone(job)
            raise

    async def events(self, job: Job) -> AsyncIterator[str]:
        """Server-sent events: ``accepted``, each graph event, then ``result`` (or ``error``)."""
        assert job.events_queue is not None
        seq, ended = 1, False
        try:
            yield _sse("accepted", {"request_id": job.id, "queue_depth": self.worker.depth}, seq)
            while True:
                try:
                    event = await asyncio.wait_for(job.events_queue.get(), timeout=self.poll_s)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"  # a write to a closed connection ends the stream
                    continue
                if event is DONE:
                    break
                seq += 1
                yield _sse(str(event.get("event", "event")), event, seq)
            outcome = await job.future
            ended = True
            seq += 1
            yield _sse("result" if outcome.status == 200 else "error", {**outcome.body, "status": outcome.status}, seq)
        finally:
            if not ended:
                self._client_gone(job)

    def _client_gone(self, job: Job) -> None:
        if not job.finished:
            job.cancelled.set()
            self.metrics.inc("qslm_client_disconnects_total")
            log.info("client_gone", request_id=job.id)

    # ------------------------------------------------------------- worker side

    def _run_solve(self, job: Job, on_event: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        assert self.solver is not None and self.store is not None
        self._check_context(job)
        result = self.solver.solve(job.question, policy=job.policy, seed=job.seed, on_event=on_event)
        body: dict[str, Any] = _safe(result.to_dict())
        body["trace"]["meta"]["trace_id"] = result.trace_id
        body.update(request_id=job.id, partial=False, partial_reason=None, model=self.model)
        self.store.put(
            result.trace_id,
            question=job.question,
            answer=result.answer,
            policy=result.policy,
            model=self.model,
            partial=False,
            trace=body["trace"],
        )
        for kind, n in result.interventions.items():
            self.metrics.inc("qslm_interventions_total", float(n), kind=str(kind))
        return body

    def _check_context(self, job: Job) -> None:
        """Refuse a prompt plus token budget longer than the model's context (a 422, not a crash)."""
        loaded = getattr(self.solver, "loaded", None)
        limit = getattr(getattr(getattr(loaded, "model", None), "config", None), "max_position_embeddings", None)
        if loaded is None or not isinstance(limit, int):
            return
        from orchestrator.api import _prompt_ids

        prompt_ids = getattr(self.solver, "prompt_ids", None)  # an Orchestrator tokenizes under its model lock
        prompt = (
            prompt_ids(job.policy, job.question)
            if callable(prompt_ids)
            else _prompt_ids(loaded.tokenizer, job.policy, job.question)
        )
        need = len(prompt) + job.policy.steps.max_total_tokens
        if need > limit:
            raise LimitError(
                f"prompt plus max_tokens is {need} tokens; the limit context_tokens (the model's context) is {limit}",
                limit="context_tokens",
                loc=("question",),
                value=need,
            )

    def _partial(self, job: Job, reason: str) -> dict[str, Any]:
        """The answer for a solve its deadline stopped: the steps the events reported so far, stored as a trace."""
        assert self.store is not None
        from orchestrator.trace import Trace

        steps = [
            {k: e.get(k) for k in ("index", "text", "origin", "confidence", "verdicts", "claims")}
            for e in job.events
            if e.get("event") == "step"
        ]
        counts = dict(Counter(str(e["event"]) for e in job.events if e.get("event") in INTERVENTION_EVENTS))
        trace_id = uuid.uuid4().hex[:16]
        nodes: list[dict[str, Any]] = [{"id": "q", "kind": "question", "label": "question", "text": job.question}]
        edges: list[dict[str, Any]] = []
        for i, s in enumerate(steps):
            conf = s["confidence"] if isinstance(s["confidence"], (int, float)) else None
            nodes.append(
                {"id": f"s{i}", "kind": "step", "label": f"step {i + 1}", "text": str(s["text"] or ""),
                 "confidence": conf, "data": {"index": i, "origin": s["origin"]}}
            )  # fmt: skip
            edges.append({"source": "q" if i == 0 else f"s{i - 1}", "target": f"s{i}", "kind": "next", "label": ""})
        meta = {"model": self.model, "policy": job.policy.name, "interventions": counts, "trace_id": trace_id,
                "partial": True, "partial_reason": reason}  # fmt: skip
        trace = _safe(Trace.from_parts(job.question, None, nodes, edges, meta).to_dict())
        self.store.put(trace_id, question=job.question, answer=None, policy=job.policy.name, model=self.model,
                       partial=True, trace=trace)  # fmt: skip
        for kind, n in counts.items():
            self.metrics.inc("qslm_interventions_total", float(n), kind=kind)
        confidences = [s["confidence"] for s in steps if isinstance(s["confidence"], (int, float))]
        return {
            "request_id": job.id, "trace_id": trace_id, "partial": True, "partial_reason": reason,
            "question": job.question, "answer": None, "steps": steps, "final": {},
            "confidence": min(confidences, default=None), "interventions": counts, "policy": job.policy.name,
            "model": self.model, "trace": trace,
        }  # fmt: skip


class MetricsMiddleware:
    """Counts every HTTP answer by route template, method and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            self.metrics.inc("qslm_http_requests_total", route=route, method=scope["method"], status=str(status[0]))
            self.metrics.observe("qslm_http_request_duration_seconds", time.perf_counter() - started, route=route)
