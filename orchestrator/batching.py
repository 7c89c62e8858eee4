"""Concurrent solves sharing one model: their step proposals go through it as one batch.

Each solve runs its graph on its own thread over a :class:`BatchedStream`. A stream's ``propose``
waits until every other solve of the same :class:`StepBatcher` is waiting too (the graph's own
work between model calls, scoring and verifying, is short); the last one to arrive then runs all
waiting proposals. Greedy drafts and sampled candidates share one token loop (each row samples its
own way); only a forced prefix or a different set of swapped-in layers runs apart. On a CPU or GPU
that is memory-bound at batch 1, eight drafts cost little more than one.

Other model work (a prefill, an edited step, a draft's agreement, a tokenizer call) is a single
forward or less and runs at once under the same lock. Everything a solve computes is what it
would compute alone, up to the rounding of a different batch shape.

The batcher belongs to one :class:`~orchestrator.api.Orchestrator`: two orchestrators over the same
loaded model do not share a lock, so use one of them from several threads, not both.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from orchestrator.errors import InputError, QslmError
from orchestrator.generation import StepGenerator
from orchestrator.memory import cap_malloc_arenas
from orchestrator.steps import Sampling, Step
from orchestrator.stream import GeneratorStream

T = TypeVar("T")
log = structlog.get_logger(__name__)


class BatchFailed(QslmError):
    """The batched run that held this solve's proposal failed (the cause is chained)."""


class BatchStopped(QslmError):
    """The batcher was stopped while this solve waited for its step (an interrupted run)."""


@dataclass
class _Proposal:
    """One stream's waiting ``propose`` call and, once run, its candidates or its error."""

    stream: BatchedStream
    n: int
    sampling: Sampling
    prefix: tuple[int, ...]
    layers: tuple[int, ...]
    result: list[Step] | None = None
    error: BaseException | None = None
    shared: bool = False  # the failed run held other solves' proposals too
    done: bool = False

    def group(self) -> tuple[Any, ...]:
        """Proposals with equal groups can share one token loop."""
        swap = (id(self.stream.precision), self.layers) if self.layers and self.stream.precision else None
        return (id(self.stream.gen), self.prefix, swap)


class StepBatcher:
    """Merges the proposals of the solves running on one model into batched runs.

    One batcher per model: its lock is what keeps two solves from running the model (or swapping
    its layers) at the same time, whichever :class:`StepGenerator` each one uses.

    ``batches`` records the latest runs as (solves, rows): how well concurrent solves were merged.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._members = 0
        self._waiting: list[_Proposal] = []
        self._stopped = False
        self._local = threading.local()  # the streams open on each thread, to refuse a nested solve
        self.batches: deque[tuple[int, int]] = deque(maxlen=4096)

    @property
    def members(self) -> int:
        return self._members

    def stream(self, generator: StepGenerator, precision: Any | None = None) -> BatchedStream:
        """A stream for one solve; it counts as a member until :meth:`BatchedStream.close`."""
        if self.current() is not None:
            # This thread's solve would wait for the one it is nested in, which waits for it.
            raise InputError("a solve cannot start another solve on the same orchestrator from inside it")
        stream = BatchedStream(self, generator, precision)
        with self._cond:
            self._members += 1
        self._local.stream = stream
        return stream

    def current(self) -> BatchedStream | None:
        """The stream of the solve running on this thread, if any."""
        return getattr(self._local, "stream", None)

    def leave(self) -> None:
        self._local.stream = None
        with self._cond:
            self._members -= 1
            self._dispatch_if_ready()

    def stop(self) -> None:
        """Make every waiting and later proposal raise :class:`BatchStopped` (an interrupted run)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._stopped = False

    def call(self, fn: Callable[[], T], swap: contextlib.AbstractContextManager[Any] | None = None) -> T:
        """Run a short piece of model or tokenizer work now, alone on the model."""
        with self._cond, swap or contextlib.nullcontext():
            return fn()

    def propose(self, proposal: _Proposal) -> list[Step]:
        with self._cond:
            if self._stopped:
                raise BatchStopped("the run was stopped")
            self._waiting.append(proposal)
            self._dispatch_if_ready()
            while not proposal.done:
                if self._stopped:
                    self._waiting.remove(proposal)
                    raise BatchStopped("the run was stopped")
                self._cond.wait()
        if proposal.error is not None:
            if proposal.shared:  # a fresh exception per thread, so tracebacks do not mix
                raise BatchFailed(f"the batched step failed: {proposal.error!r}") from proposal.error
            raise proposal.error
        if proposal.result is None:
            raise BatchFailed("the batched step ended without a result")
        return proposal.result

    def _dispatch_if_ready(self) -> None:
        """With every member waiting, run the waiting proposals group by group (the lock is held)."""
        if not self._waiting or len(self._waiting) < self._members:
            return
        waiting, self._waiting = self._waiting, []
        groups: dict[tuple[Any, ...], list[_Proposal]] = {}
        for p in waiting:
            groups.setdefault(p.group(), []).append(p)
        try:
            for group in groups.values():
                self._run_group(group)
        finally:
            for p in waiting:
                p.done = True
            self._cond.notify_all()

    def _run_group(self, group: list[_Proposal]) -> None:
        """One token loop for the group; if it fails, each proposal again alone, so a failure (a
        batch too large for the device, a bad session) costs only the solves that cause it."""
        first = group[0]
        try:
            with first.stream.swapped(first.layers):
                outs = first.stream.gen.propose_together(
                    [(p.stream.require_session(), p.n, p.sampling) for p in group], first.prefix
                )
            self.batches.append((len(group), sum(p.n for p in group)))
            for p, out in zip(group, outs, strict=True):
                p.result = out[0]
        except Exception as exc:
            if len(group) == 1:
                first.error = exc
                return
            log.warning("batched_run_failed", solves=len(group), error=repr(exc), then="each alone")
            for p in group:
                self._run_group([p])
        except BaseException as exc:  # an interrupt: every solve of the group gets it
            for p in group:
                p.error, p.shared = exc, len(group) > 1


class BatchedStream(GeneratorStream):
    """A :class:`GeneratorStream` whose proposals wait to run together with other solves'."""

    def __init__(self, batcher: StepBatcher, generator: StepGenerator, precision: Any | None = None) -> None:
        super().__init__(generator, precision)
        self.batcher = batcher
        self._layers: tuple[int, ...] = ()
        self._closed = False

    def close(self) -> None:
        """Leave the batcher (idempotent): other solves stop waiting for this one."""
        if not self._closed:
            self._closed = True
            self.batcher.leave()

    def __enter__(self) -> BatchedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require_session(self) -> Any:
        assert self.session is not None, "sync() first"
        return self.session

    def swapped(self, layers: Sequence[int]) -> contextlib.AbstractContextManager[Any]:
        """High-precision copies of ``layers`` swapped in for the duration (nothing without layers): the
        swap a plain :class:`GeneratorStream` makes in :meth:`escalated`, here done around each model call."""
        return GeneratorStream.escalated(self, layers)

    def sync(self, prompt_ids: Sequence[int], accepted: Sequence[str]) -> None:
        self.batcher.call(lambda: GeneratorStream.sync(self, prompt_ids, accepted), self.swapped(self._layers))

    def propose(self, n: int, sampling: Sampling, prefix: Sequence[int] = ()) -> list[Step]:
        self.require_session()
        self.proposal_id += 1
        return self.batcher.propose(_Proposal(self, n, sampling, tuple(int(t) for t in prefix), self._layers))

    def agreement(self, token_ids: Sequence[int]) -> int:
        return self.batcher.call(lambda: GeneratorStream.agreement(self, token_ids), self.swapped(self._layers))

    def accept_text(self, text: str, index: int | None) -> Step:
        return self.batcher.call(lambda: GeneratorStream.accept_text(self, text, index), self.swapped(self._layers))

    def piece(self, token_id: int) -> str:
        return self.batcher.call(lambda: self.gen.piece(token_id))

    @contextlib.contextmanager
    def escalated(self, layers: Sequence[int]) -> Iterator[None]:
        """Mark the model calls made inside as escalated; the swap happens around each call."""
        before, self._layers = self._layers, tuple(layers)
        try:
            yield
        finally:
            self._layers = before


X = TypeVar("X")


@dataclass
class Finished(Generic[X, T]):
    """One item run by :func:`run_concurrently`: its result or error, and the time charged to it."""

    index: int
    item: X
    result: T | None
    error: Exception | None
    seconds: float  # wall time shared out: while k items ran at once, each was charged 1/k of it
    cpu_seconds: float  # process CPU time, shared out the same way


class _Ledger:
    """Shares elapsed wall and CPU time among the items running at each moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, list[float]] = {}
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def _settle(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        if self._running:
            k = len(self._running)
            for acc in self._running.values():
                acc[0] += (wall - self._wall) / k
                acc[1] += (cpu - self._cpu) / k
        self._wall, self._cpu = wall, cpu

    def begin(self, key: int) -> None:
        with self._lock:
            self._settle()
            self._running[key] = [0.0, 0.0]

    def end(self, key: int) -> tuple[float, float]:
        with self._lock:
            self._settle()
            wall, cpu = self._running.pop(key)
            return wall, cpu


def run_concurrently(
    items: Sequence[X], fn: Callable[[X], T], concurrency: int, on_stop: Callable[[], None] | None = None
) -> Iterator[Finished[X, T]]:
    """Run ``fn`` on every item, ``concurrency`` at a time on threads; yield each as it finishes.

    An item's error is returned in its :class:`Finished`, not raised, so one bad item costs the
    others nothing. Leaving the loop early (an error, Ctrl-C) cancels the items not yet started,
    calls ``on_stop`` (which should make the running ones end soon) and waits for them.
    """
    if concurrency < 1:
        raise InputError("concurrency must be at least 1")
    ledger = _Ledger()

    def work(index: int) -> Finished[X, T]:
        ledger.begin(index)
        result: T | None = None
        error: Exception | None = None
        try:
            result = fn(items[index])
        except Exception as exc:
            error = exc
        wall, cpu = ledger.end(index)
        return Finished(index, items[index], result, error, wall, cpu)

    if concurrency == 1:  # no thread: tracebacks, debuggers and signals behave as usual
        for i in range(len(items)):
            yield work(i)
        return
    cap_malloc_arenas()  # solve threads would otherwise each keep freed caches in a heap of their own
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="qslm-solve")
    finished = False
    futures: list[Future[Finished[X, T]]] = []
    try:
        futures = [pool.submit(work, i) for i in range(len(items))]
        for future in as_completed(futures):
            yield future.result()
        finished = True
    finally:
        if not finished:
            for future in futures:
                future.cancel()
            if on_stop is not None:
                on_stop()
        pool.shutdown(wait=True, cancel_futures=True)
