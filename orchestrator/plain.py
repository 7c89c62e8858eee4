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
) -> list[PlainResult]:
    """Advance every prompt one step at a time, as one batch, until each finishes or hits a limit."""
    sampling = sampling or Sampling()
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
