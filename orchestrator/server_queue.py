"""One model per process: worker threads run solves from a bounded queue.

With one worker (the default) solves run one at a time. With ``workers`` k > 1, up to k solves run at
once on the same :class:`~orchestrator.api.Orchestrator`, whose batcher generates their steps as one
batch: more throughput where the model is memory-bound, at some latency per solve.

Request handlers build a :class:`Job`, :meth:`SolveWorker.submit` it (``QueueFullError`` when the queue
is full: the caller answers 429) and await ``job.future``. The worker calls the solve with an event hook
that runs between graph nodes; the hook stops the solve when the job was cancelled (client gone) or its
deadline passed. Every job is finished exactly once, and its outcome is handed to the event loop that
submitted it; events (for server-sent events) go the same way, in order, before the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from orchestrator.errors import GenerationError, QslmError
from orchestrator.memory import cap_malloc_arenas
from policies import Policy

log = structlog.get_logger(__name__)

OutcomeKind = Literal["ok", "partial", "cancelled", "skipped", "error"]
DONE = {"event": "__done__"}  # pushed on a job's event queue after its last event


class QueueFullError(Exception):
    """The queue is full; ``retry_after`` is a guess, in whole seconds, of when a slot frees up."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the solve queue is full; retry after {retry_after} s")
        self.retry_after = retry_after


class _Cancelled(Exception):
    """Raised from the event hook: the client went away or the server is stopping."""


class _DeadlineReached(Exception):
    """Raised from the event hook: the job's deadline passed."""


@dataclass
class Outcome:
    kind: OutcomeKind
    status: int  # the HTTP status to answer with
    body: dict[str, Any]


@dataclass
class Job:
    """One solve request on its way through the queue."""

    question: str
    policy: Policy
    seed: int | None
    deadline: float  # time.monotonic() after which the solve stops with a partial result
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]
    events_queue: asyncio.Queue[dict[str, Any]] | None = None  # set for streamed requests
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cancelled: threading.Event = field(default_factory=threading.Event)
    events: list[dict[str, Any]] = field(default_factory=list)
    enqueued: float = field(default_factory=time.monotonic)
    finished: bool = False


SolveFn = Callable[[Job, Callable[[dict[str, Any]], None]], dict[str, Any]]
PartialFn = Callable[[Job, str], dict[str, Any]]


class SolveWorker:
    """The queue and the threads that drain it.

    ``solve(job, on_event)`` runs the solve and returns the answer's body (it persists the trace);
    ``partial(job, reason)`` builds the body of a solve stopped by its deadline from ``job.events``.
    """

    def __init__(
        self, solve: SolveFn, partial: PartialFn, *, queue_size: int, metrics: Any = None, workers: int = 1
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._solve = solve
        self._partial = partial
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max(1, queue_size))
        self.queue_size = max(1, queue_size)
        self._metrics = metrics
        self.workers = workers
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._finish_lock = threading.Lock()
        self._running: set[str] = set()  # ids of the jobs being solved
        self._running_lock = threading.Lock()
        self._avg_seconds = 1.0  # moving average of a solve's duration, for Retry-After

    # ------------------------------------------------------------- control

    def start(self) -> None:
        if self.workers > 1:
            cap_malloc_arenas()  # workers would otherwise each keep freed caches in a heap of their own
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"qslm-solve-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs: waiting ones are answered 503, the running ones are cancelled."""
        self._stopping.set()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                self._finish(job, Outcome("error", 503, {"detail": "the server is shutting down"}))
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)  # each worker hands the stop on to the next
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def busy(self) -> bool:
        return self.running > 0

    @property
    def running(self) -> int:
        """Solves running now (at most ``workers``)."""
        return len(self._running)

    def retry_after(self) -> int:
        return max(1, math.ceil(self._avg_seconds * (self.depth + 1) / self.workers))

    def submit(self, job: Job) -> None:
        if self._stopping.is_set():
            raise QueueFullError(self.retry_after())
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise QueueFullError(self.retry_after()) from None

    # ------------------------------------------------------------- worker side

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                with contextlib.suppress(queue.Full):
                    self._queue.put_nowait(None)
                return
            with self._running_lock:
                self._running.add(job.id)
            try:
                self._process(job)
            except BaseException as exc:  # never let the worker die with a job unanswered
                log.exception("worker_failed", job=job.id)
                self._finish(job, Outcome("error", 500, {"detail": f"internal error: {type(exc).__name__}"}))
            finally:
                with self._running_lock:
                    self._running.discard(job.id)

    def _process(self, job: Job) -> None:
        if self._metrics is not None:
            self._metrics.observe("qslm_queue_wait_seconds", time.monotonic() - job.enqueued)
        if job.cancelled.is_set():
            self._finish(job, Outcome("skipped", 499, {"detail": "the client went away while queued"}))
            return
        if self._stopping.is_set():
            self._finish(job, Outcome("error", 503, {"detail": "the server is shutting down"}))
            return
        if time.monotonic() >= job.deadline:
            self._finish(job, Outcome("partial", 200, self._partial(job, "deadline passed while queued")))
            return
        started = time.monotonic()
        try:
            body = self._solve(job, self._hook(job))
        except _Cancelled:
            if job.cancelled.is_set():
                outcome = Outcome("cancelled", 499, {"detail": "cancelled: the client went away"})
            else:
                outcome = Outcome("error", 503, {"detail": "the server is shutting down"})
        except _DeadlineReached:
            outcome = Outcome("partial", 200, self._partial(job, "deadline"))
        except GenerationError as exc:  # the model failed, not the request
            log.exception("solve_failed", job=job.id)
            outcome = Outcome("error", 500, {"detail": f"model failure: {exc}"})
        except QslmError as exc:  # the same shape as a validation error
            detail = getattr(exc, "detail", None)
            items = detail() if callable(detail) else [{"loc": ["body"], "msg": str(exc), "type": "invalid_request"}]
            outcome = Outcome("error", 422, {"detail": items})
        except Exception as exc:
            log.exception("solve_failed", job=job.id)
            outcome = Outcome("error", 500, {"detail": f"internal error: {type(exc).__name__}"})
        else:
            outcome = Outcome("ok", 200, body)
        seconds = time.monotonic() - started
        self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * seconds
        if self._metrics is not None:
            self._metrics.observe("qslm_solve_duration_seconds", seconds)
        self._finish(job, outcome)

    def _hook(self, job: Job) -> Callable[[dict[str, Any]], None]:
        def on_event(event: dict[str, Any]) -> None:
            job.events.append(event)
            if job.events_queue is not None:
                self._call(job, job.events_queue.put_nowait, event)
            if job.cancelled.is_set() or self._stopping.is_set():
                raise _Cancelled
            if event.get("event") != "final" and time.monotonic() >= job.deadline:
                raise _DeadlineReached

        return on_event

    def _finish(self, job: Job, outcome: Outcome) -> None:
        with self._finish_lock:
            if job.finished:
                return
            job.finished = True
        if self._metrics is not None:
            self._metrics.inc("qslm_solves_total", outcome=outcome.kind)
        if job.events_queue is not None:
            self._call(job, job.events_queue.put_nowait, DONE)
        self._call(job, _resolve, job.future, outcome)

    @staticmethod
    def _call(job: Job, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
            job.loop.call_soon_threadsafe(fn, *args)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)
