"""Plain step-by-step generation: no monitors, no verifiers. The baseline every intervention is measured against."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.generation import StepGenerator
from orchestrator.steps import Sampling, Step


@dataclass
class PlainResult:
    """What plain generation produced for one question."""

    prompt_ids: list[int]
    steps: list[Step] = field(default_factory=list)
    finished: bool = False
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.steps)

    @property
    def tokens(self) -> int:
        return sum(len(s) for s in self.steps)


StepCallback = Callable[[int, int, Step], None]  # (question index, step index, step)


def generate_plain(
    gen: StepGenerator,
    prompts: Sequence[Sequence[int]],
    *,
    max_steps: int = 40,
    max_tokens: int = 512,
    sampling: Sampling | None = None,
    on_step: StepCallback | None = None,
    lockstep: bool = True,
) -> list[PlainResult]:
    """Advance every prompt one step at a time, as one batch, until each finishes or hits a limit.

    ``lockstep=False`` is the throughput mode: every question runs on without waiting for the
    others to end their step (no idle rows), and the text is cut into steps afterwards, at the
    same boundaries. Steps then reach ``on_step`` only at the end.
    """
    sampling = sampling or Sampling()
    if not lockstep:
        return _continuous(gen, prompts, max_steps=max_steps, max_tokens=max_tokens, sampling=sampling, on_step=on_step)
    started = time.perf_counter()
    session = gen.start([list(p) for p in prompts])
    results = [PlainResult(list(p)) for p in prompts]
    for _ in range(max_steps):
        for q, res in enumerate(results):  # a question whose token budget is spent stops here
            if res.tokens >= max_tokens:
                session.finished[q] = True
        live = [q for q in range(len(prompts)) if not session.finished[q]]
        if not live:
            break
        left = max_tokens - min(results[q].tokens for q in live)
        steps = gen.propose(session, sampling=_budget(sampling, left))
        gen.accept(session, 0)
        for q, cands in enumerate(steps):
            if not cands:
                continue
            results[q].steps.append(cands[0])
            if on_step is not None:
                on_step(q, len(results[q].steps) - 1, cands[0])
    for res in results:
        res.finished = any(s.finished for s in res.steps)
        res.seconds = time.perf_counter() - started
    return results


def _budget(sampling: Sampling, left: int) -> Sampling:
    from dataclasses import replace

    return replace(sampling, max_step_tokens=max(1, min(sampling.max_step_tokens, left)))


def _continuous(
    gen: StepGenerator,
    prompts: Sequence[Sequence[int]],
    *,
    max_steps: int,
    max_tokens: int,
    sampling: Sampling,
    on_step: StepCallback | None,
) -> list[PlainResult]:
    from dataclasses import replace

    started = time.perf_counter()
    runner = StepGenerator(gen.model, gen.tokenizer, boundary="none", stop_strings=gen.stop_strings,
                           max_context=gen.max_context)  # fmt: skip
    runner._pieces = gen._pieces  # share the decoded-piece cache
    session = runner.start([list(p) for p in prompts])
    whole = runner.propose(session, sampling=replace(sampling, max_step_tokens=max_tokens))
    results = []
    for q, cands in enumerate(whole):
        steps = split_steps(cands[0], gen.boundary)[:max_steps] if cands else []
        res = PlainResult(list(prompts[q]), steps, finished=bool(cands and cands[0].finished))
        res.seconds = time.perf_counter() - started
        for k, step in enumerate(steps):
            if on_step is not None:
                on_step(q, k, step)
        results.append(res)
    return results


def split_steps(whole: Step, boundary: str = "newline") -> list[Step]:
    """Cut one long generation into steps at newline (or blank-line) boundaries after content."""
    cuts: list[int] = []
    text = ""
    start_text = 0
    for i, piece in enumerate(whole.tokens):
        text += piece
        seg = text[start_text:]
        if "\n" not in piece or not seg.strip(" \t\r\n"):
            continue
        if boundary == "blank_line" and not seg.rstrip(" \t").endswith("\n\n"):
            continue
        cuts.append(i + 1)
        start_text = len(text)
    if not cuts or cuts[-1] != len(whole.tokens):
        cuts.append(len(whole.tokens))
    steps, begin = [], 0
    for end in cuts:
        if end <= begin:
            continue
        last = end == len(whole.tokens)
        steps.append(
            Step(
                text="".join(whole.tokens[begin:end]),
                token_ids=whole.token_ids[begin:end],
                tokens=whole.tokens[begin:end],
                logprobs=whole.logprobs[begin:end],
                entropies=whole.entropies[begin:end],
                margins=whole.margins[begin:end],
                top1_probs=whole.top1_probs[begin:end],
                stop_reason=whole.stop_reason if last else "boundary",
                finished=whole.finished and last,
            )
        )
        begin = end
    return steps
