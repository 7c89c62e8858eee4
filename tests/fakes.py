"""A scripted step stream: drives the graph's logic with exact, chosen steps and confidences."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from orchestrator.steps import Sampling, Step


@dataclass
class Draft:
    """A scripted step: its text and how sure the 'model' was of its tokens."""

    text: str
    p: float = 0.95  # top-1 probability of every token
    weak: dict[str, float] = field(default_factory=dict)  # token -> probability, to make one token unsure
    finished: bool = False
    cut: bool = False  # generation stopped at a token limit


def make_step(d: Draft) -> Step:
    pieces = _pieces(d.text)
    probs = [d.weak.get(t.strip(), d.p) for t in pieces]
    return Step(
        text=d.text,
        token_ids=[abs(hash(t)) % 50_000 for t in pieces],
        tokens=pieces,
        logprobs=[_log(p) for p in probs],
        entropies=[0.1 if p > 0.9 else 1.5 for p in probs],
        margins=[max(0.0, 2 * p - 1) for p in probs],
        top1_probs=probs,
        stop_reason="max_tokens" if d.cut else "eos" if d.finished else "boundary",
        finished=d.finished,
    )


def _log(p: float) -> float:
    import math

    return math.log(max(p, 1e-9))


def _pieces(text: str) -> list[str]:
    out: list[str] = []
    word = ""
    for ch in text:
        if ch in " \n" and word:
            out.append(word)
            word = ""
        word += ch
    if word:
        out.append(word)
    return out


class Crash(RuntimeError):
    """A simulated kill of the process in the middle of a solve."""


class ScriptedStream:
    """Answers each ``propose`` with the next scripted list of drafts; records every call."""

    def __init__(
        self,
        script: Sequence[Sequence[Draft]],
        *,
        start: int = 0,
        crash_at: int | None = None,
        agreements: Sequence[int] = (),
    ) -> None:
        self.agreements = list(agreements)  # answers to agreement(), in order
        self.script = [list(turn) for turn in script]
        self.cursor = start
        self.crash_at = crash_at
        self.proposal_id = 0
        self.calls: list[tuple[str, object]] = []
        self.accepted: list[str] = []
        self.escalated_layers: list[list[int]] = []
        self._pending: list[Step] = []
        self._escalated = False

    @property
    def num_layers(self) -> int:
        return 8

    def sync(self, prompt_ids: Sequence[int], accepted: Sequence[str]) -> None:
        if list(accepted) != self.accepted:  # a resumed solve: take the prefix as given
            self.calls.append(("resync", len(accepted)))
            self.accepted = list(accepted)

    def agreement(self, token_ids: Sequence[int]) -> int:
        agreed = self.agreements.pop(0)
        self.calls.append(("agreement", {"draft": len(token_ids), "agreed": agreed, "escalated": self._escalated}))
        return agreed

    def propose(self, n: int, sampling: Sampling, prefix: Sequence[int] = ()) -> list[Step]:
        if self.crash_at is not None and self.cursor == self.crash_at:
            raise Crash(f"killed at proposal {self.cursor}")
        if self.cursor >= len(self.script):
            raise AssertionError(f"script exhausted at proposal {self.cursor}")
        turn = self.script[self.cursor]
        self.cursor += 1
        self.proposal_id += 1
        assert len(turn) == n, f"proposal {self.cursor - 1}: script has {len(turn)} drafts, graph asked for {n}"
        call = {"n": n, "temperature": sampling.temperature, "escalated": self._escalated}
        if prefix:
            call["prefix"] = len(prefix)
        self.calls.append(("propose", call))
        self._pending = [make_step(d) for d in turn]
        return list(self._pending)

    def accept(self, index: int) -> None:
        self.calls.append(("accept", index))
        self.accepted.append(self._pending[index].text)
        self._pending = []

    def accept_text(self, text: str, index: int | None) -> Step:
        self.calls.append(("accept_text", text))
        self.accepted.append(text)
        self._pending = []
        return make_step(Draft(text))

    def reject(self) -> None:
        self._pending = []

    @contextlib.contextmanager
    def escalated(self, layers: Sequence[int]) -> Iterator[None]:
        self.escalated_layers.append(list(layers))
        self._escalated = True
        try:
            yield
        finally:
            self._escalated = False

    def piece(self, token_id: int) -> str:
        return " 1"
