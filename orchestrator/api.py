"""The public entry points: ``solve(question)`` and ``Orchestrator`` (a loaded model kept for many solves)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import structlog
from langchain_core.runnables import RunnableConfig

from orchestrator.batching import BatchedStream, Finished, StepBatcher, run_concurrently
from orchestrator.errors import InputError
from orchestrator.generation import StepGenerator
from orchestrator.state import EventCallback, SolveContext, SolveState
from orchestrator.stream import StepStream
from orchestrator.trace import Trace
from orchestrator.verdicts import resolve_verifiers
from policies import Policy, load_policy

log = structlog.get_logger(__name__)


@dataclass
class SolveResult:
    """What one solve produced, with everything needed to explain it."""

    question: str
    answer: str | None
    steps: list[dict[str, Any]]  # accepted steps: text, origin, confidence, verdicts, flags
    final: dict[str, Any]  # stated answer, chain value, how a disagreement was resolved
    confidence: float  # lowest step confidence of the accepted chain
    escalations: int
    corrections: int
    interventions: dict[str, int]  # fired, by kind (resample, escalate, correct, flag, ...)
    tokens: int  # tokens of the accepted chain
    tokens_spent: int  # every generated token, rejected candidates included
    seconds: float
    trace: Trace
    policy: str
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def text(self) -> str:
        return "".join(s["text"] for s in self.steps)

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        return [v for s in self.steps for v in s["verdicts"]]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trace"] = self.trace.to_dict()
        return data


def _prompt_ids(stream_tokenizer: Any, policy: Policy, question: str) -> list[int]:
    from orchestrator.prompting import build_prompt

    return build_prompt(
        stream_tokenizer, question, template=policy.prompt.render("{question}"), system=policy.prompt.system
    )


def run_solve(
    question: str,
    prompt_ids: list[int],
    stream: StepStream,
    policy: Policy,
    *,
    seed: int | None = None,
    escalation_layers: list[int] | None = None,
    on_event: EventCallback | None = None,
    checkpointer: Any | None = None,
    thread_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> SolveResult:
    """Run the graph for one question over any step stream (the real model or a scripted fake).

    With a ``checkpointer`` and a ``thread_id`` the solve is resumable: calling again with the same
    thread id continues from the last completed node instead of starting over.
    """
    from orchestrator.graph import build_graph

    started = time.perf_counter()
    verifiers = resolve_verifiers(policy.verifiers)
    ctx = SolveContext(
        stream=stream,
        policy=policy,
        verifiers=verifiers,
        escalation_layers=list(escalation_layers or []),
        on_event=on_event,
        seed=seed,
    )
    graph = build_graph().compile(checkpointer=checkpointer)
    config: RunnableConfig = {"recursion_limit": policy.recursion_limit}
    if checkpointer is not None:
        config["configurable"] = {"thread_id": thread_id or uuid.uuid4().hex}
    initial: SolveState | None = {
        "question": question,
        "prompt_ids": prompt_ids,
        "steps": [],
        "draft": None,
        "attempts": 0,
        "repairs": 0,
        "escalations": 0,
        "tokens": 0,
        "tokens_spent": 0,
        "counts": {},
        "trace_nodes": [
            {"id": "q", "kind": "question", "label": "question", "text": question, "confidence": None, "data": {}}
        ],
        "trace_edges": [],
        "done": False,
    }
    if checkpointer is not None:
        snapshot = graph.get_state(config)
        if snapshot.values and snapshot.next:
            initial = None  # resume where the killed solve stopped
            log.info("solve_resumed", thread_id=config["configurable"]["thread_id"], next=list(snapshot.next))
        elif snapshot.values and not snapshot.next:
            initial = None  # already finished: return the stored result
    state = graph.invoke(initial, config=config, context=ctx)
    seconds = time.perf_counter() - started
    steps = list(state.get("steps") or [])
    final = dict(state.get("final") or {})
    counts = dict(state.get("counts") or {})
    trace_meta = {
        **(meta or {}),
        "policy": policy.name,
        "seconds": round(seconds, 3),
        "tokens": state.get("tokens", 0),
        "tokens_spent": state.get("tokens_spent", 0),
        "interventions": counts,
    }
    trace = Trace.from_parts(
        question, final.get("answer"), state.get("trace_nodes") or [], state.get("trace_edges") or [], trace_meta
    )
    return SolveResult(
        question=question,
        answer=final.get("answer"),
        steps=steps,
        final=final,
        confidence=min((s["confidence"] for s in steps), default=1.0),
        escalations=int(state.get("escalations", 0)),
        corrections=counts.get("correct", 0),
        interventions=counts,
        tokens=int(state.get("tokens", 0)),
        tokens_spent=int(state.get("tokens_spent", 0)),
        seconds=seconds,
        trace=trace,
        policy=policy.name,
    )


class Orchestrator:
    """A loaded model kept for many solves: the model loads once, layer copies are built once per choice."""

    def __init__(self, loaded: Any, *, policy: str | Path | Policy = "default") -> None:

        self.loaded = loaded
        self.default_policy = load_policy(policy)
        self._generators: dict[tuple[str, tuple[str, ...]], StepGenerator] = {}
        self._precision: dict[tuple[int, ...], Any] = {}
        self._batcher = StepBatcher()  # solves on other threads share the model through it

    @classmethod
    def from_name(
        cls,
        model: str | None = None,
        *,
        quant: str = "none",
        device: str = "auto",
        policy: str | Path | Policy = "default",
        **load_kwargs: Any,
    ) -> Orchestrator:
        """Load a model (catalog name, folder, GGUF file or hub id) and keep it."""
        from orchestrator.loading import load

        return cls(load(model, quant=quant, device=device, **load_kwargs), policy=policy)

    def escalation_layers(self, policy: Policy) -> list[int]:
        from orchestrator.layer_choice import choose_layers

        n = int(self.loaded.model.config.num_hidden_layers)
        return choose_layers(n, policy.escalation.layers, k=policy.escalation.profile_layers)

    def _precision_for(self, layers: list[int]) -> Any:
        from orchestrator.precision import LayerPrecision

        key = tuple(layers)
        if key not in self._precision:
            if self.loaded.reference is None:
                raise InputError("this model has no reference weights on disk: escalation is not available")
            self._precision[key] = LayerPrecision(self.loaded.model, self.loaded.reference, layers)
        return self._precision[key]

    def prompt_ids(self, policy: Policy, question: str) -> list[int]:
        """The prompt's token ids for a question under a policy (the tokenizer is used under the model's lock)."""
        return self._batcher.call(lambda: _prompt_ids(self.loaded.tokenizer, policy, question))

    def generator(self, policy: Policy) -> StepGenerator:
        """The step generator for a policy's step boundary (one per boundary, kept)."""
        from orchestrator.generation import StepGenerator

        key = (policy.steps.boundary, tuple(policy.steps.stop_strings))
        if key not in self._generators:
            boundary = "blank_line" if policy.steps.boundary == "numbered_item" else policy.steps.boundary
            self._generators[key] = StepGenerator(
                self.loaded.model, self.loaded.tokenizer, boundary=boundary, stop_strings=policy.steps.stop_strings
            )
        return self._generators[key]

    def _stream(self, policy: Policy, layers: list[int]) -> BatchedStream:
        """A stream for one solve, a member of the model's batcher until closed."""

        def parts() -> tuple[StepGenerator, Any]:
            precision = self._precision_for(layers) if layers and self._escalation_useful() else None
            return self.generator(policy), precision

        generator, precision = self._batcher.call(parts)
        return self._batcher.stream(generator, precision)

    def _escalation_useful(self) -> bool:
        return self.loaded.quant.kind != "none" and self.loaded.reference is not None

    def solve(
        self,
        question: str,
        *,
        policy: str | Path | Policy | None = None,
        seed: int | None = None,
        on_event: EventCallback | None = None,
        checkpointer: Any | None = None,
        thread_id: str | None = None,
    ) -> SolveResult:
        """Solve one question under ``policy`` (the orchestrator's default when None)."""
        from orchestrator.prompting import check_question

        pol = self.default_policy if policy is None else load_policy(policy)
        question = check_question(question)
        layers = self.escalation_layers(pol) if pol.escalation.enabled and self._escalation_useful() else []
        meta = {
            "model": self.loaded.name,
            "quant": self.loaded.quant.name,
            "device": self.loaded.device,
            "escalation_layers": layers,
        }
        with self._stream(pol, layers) as stream:
            prompt = self.prompt_ids(pol, question)
            return run_solve(
                question,
                prompt,
                stream,
                pol,
                seed=seed,
                escalation_layers=layers,
                on_event=on_event,
                checkpointer=checkpointer,
                thread_id=thread_id,
                meta=meta,
            )

    def solve_iter(
        self, questions: Sequence[str], *, concurrency: int = 1, **kwargs: Any
    ) -> Iterator[Finished[str, SolveResult]]:
        """Solve questions ``concurrency`` at a time; yield each as it finishes, its error (if any) in it.

        Concurrent solves generate their steps as one batch (see :mod:`orchestrator.batching`): more
        throughput where the model is memory-bound at batch 1 (a GPU), less so on a small CPU. Leaving
        the loop early (Ctrl-C) stops the running solves at their next step.
        """
        try:
            yield from run_concurrently(
                list(questions), lambda q: self.solve(q, **kwargs), concurrency, on_stop=self._batcher.stop
            )
        finally:
            self._batcher.resume()

    def solve_many(self, questions: Sequence[str], *, concurrency: int = 1, **kwargs: Any) -> list[SolveResult]:
        """Solve several questions with the loaded model (``concurrency`` at a time, see :meth:`solve_iter`).

        Results come in the order of ``questions``. If solves failed, the error of the first such
        question is raised once the others have ended.
        """
        done = {d.index: d for d in self.solve_iter(questions, concurrency=concurrency, **kwargs)}
        results: list[SolveResult] = []
        for i in range(len(done)):
            if done[i].error is not None:
                raise done[i].error  # type: ignore[misc]
            results.append(done[i].result)  # type: ignore[arg-type]
        return results

    @property
    def batch_sizes(self) -> list[tuple[int, int]]:
        """(solves, rows) of the latest step generations: how well concurrent solves were merged."""
        return list(self._batcher.batches)


_LOADED: dict[tuple[str | None, str, str], Orchestrator] = {}


def solve(
    question: str,
    *,
    model: str | None = None,
    quant: str = "none",
    policy: str | Path | Policy = "default",
    seed: int | None = None,
    device: str = "auto",
    on_event: EventCallback | None = None,
) -> SolveResult:
    """Solve one question; the model is loaded on first use and kept for later calls in this process."""
    key = (model, quant, device)
    if key not in _LOADED:
        _LOADED[key] = Orchestrator.from_name(model, quant=quant, device=device)
    return _LOADED[key].solve(question, policy=policy, seed=seed, on_event=on_event)
