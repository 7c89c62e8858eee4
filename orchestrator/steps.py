"""Backend-neutral records of generated steps: plain Python data, no torch types.

A step generator (transformers today, llama.cpp later) returns these; the confidence
monitors, verifiers, graph and trace read them without knowing which backend made them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

StopReason = Literal["boundary", "stop_string", "eos", "max_tokens"]

TemperatureHook = Callable[[Sequence[int], int], float]
"""Per-token temperature: ``hook(step_token_ids_so_far, greedy_next_token_id) -> temperature``.

Lets a caller sample cooler on key tokens (digits, operators) and warmer elsewhere.
A return value <= 0 means greedy for that token.
"""


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens: greedy when ``temperature == 0``."""

    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0  # nucleus mass kept when sampling
    seed: int | None = None  # candidate i of a call draws from seed + i
    max_step_tokens: int = 160  # a step longer than this ends with stop_reason "max_tokens"
    temperature_hook: TemperatureHook | None = None  # overrides temperature per token


@dataclass
class Step:
    """One reasoning step as generated, with the per-token signals the monitors need."""

    text: str
    token_ids: list[int]
    tokens: list[str]  # decoded piece of each token, for key-token classification
    logprobs: list[float]  # log-probability of each chosen token (under the unmodified distribution)
    entropies: list[float]  # entropy (nats) of each next-token distribution
    margins: list[float]  # top-1 minus top-2 probability at each position
    top1_probs: list[float]  # probability of the most likely token at each position
    stop_reason: StopReason = "boundary"
    finished: bool = False  # the model ended its answer (EOS) with this step
    meta: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def mean_logprob(self) -> float:
        return sum(self.logprobs) / len(self.logprobs) if self.logprobs else 0.0
