"""Per-row bookkeeping of the token loop: sampling, per-token signals, and where a numbered item ends.

Kept apart from :mod:`orchestrator.generation` (the loop and the cache) because these pieces are
pure functions of logits and text, with no model or cache in sight.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from orchestrator.errors import GenerationError
from orchestrator.steps import Step, StopReason


@dataclass
class LineCut:
    """Where a numbered item may end: tokens and text so far, cache length, logits after the newline."""

    n_tokens: int
    text_len: int
    physical: int
    logits: torch.Tensor | None


ITEM_START = re.compile(r"^(?:\d{1,3}[.)]\s|\d{1,3}[.)]?\s*\*\*|Step\s*\d|#{1,6}\s|\*\*Step)")
ITEM_PREFIX = re.compile(r"^(?:\d{1,3}[.)]?|S|St|Ste|Step\s*|#{1,6}|\*|\*\*|\*\*S\w{0,3})$")


def next_line_verdict(after: str) -> Literal["item", "blank", "same", "open"]:
    """How the text after a newline bears on a numbered item: a new item starts, a blank line, or not."""
    body = after.lstrip(" \t")
    if not body.strip(" \t"):
        return "open"
    if body.startswith("\n"):
        return "blank"
    if ITEM_START.match(body):
        return "item"
    if ITEM_PREFIX.match(body.rstrip("\n")) and "\n" not in body:
        return "open"
    return "same"


@dataclass
class RowRecord:
    """Per-row accumulator while a step is being generated."""

    ids: list[int] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    entropies: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    reason: StopReason = "max_tokens"
    finished: bool = False
    text: str = ""
    cut: LineCut | None = None  # numbered_item mode: a newline that may end the step

    def truncate(self, n: int) -> None:
        for name in ("ids", "pieces", "logprobs", "entropies", "margins", "top1"):
            del getattr(self, name)[n:]
        self.text = "".join(self.pieces)
        self.cut = None

    def add(self, tok: int, piece: str) -> None:
        self.ids.append(tok)
        self.pieces.append(piece)
        self.text += piece

    def to_step(self) -> Step:
        n = len(self.ids)  # signals of an EOS token are dropped with the token
        return Step(
            text=self.text,
            token_ids=self.ids,
            tokens=self.pieces,
            logprobs=self.logprobs[:n],
            entropies=self.entropies[:n],
            margins=self.margins[:n],
            top1_probs=self.top1[:n],
            stop_reason=self.reason,
            finished=self.finished,
        )


def sampling_probs(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution one row samples from: tempered and cut to its top-``top_p`` nucleus, computed where the
    logits live without reading anything back, so a batch's rows are all queued before one read."""
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(0) - sorted_p < top_p
        keep[0] = True
        filtered = torch.zeros_like(probs).scatter_(0, order, sorted_p * keep)
        probs = filtered / filtered.sum()
    return probs


def sample_tokens(probs: Sequence[torch.Tensor], gens: Sequence[torch.Generator | None]) -> list[int]:
    """One token from each row's distribution: one uniform per row from the row's own (host) generator, so a
    seed replays, then :func:`inverse_cdf` for the batch where the rows live. Drawing on the host with
    ``torch.multinomial`` instead cost ~5 ms per row for a 150k vocabulary (measured) and a transfer of every
    row: on a GPU, 16 sampled candidates were slower per token than one greedy row."""
    uniforms = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in gens])
    return inverse_cdf(torch.stack(list(probs)), uniforms)


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> list[int]:
    """Per row of ``probs`` (unnormalised, non-negative), the token whose cumulative-mass bin holds
    ``uniforms[row]`` (in [0, 1)) times the row's mass: never a zero-probability token. A row that is not a
    distribution (NaN or infinite mass, or none) raises :class:`GenerationError`."""
    u = uniforms.to(probs.device, non_blocking=True)
    cdf = probs.double().cumsum(-1)
    total = cdf[:, -1]
    picked = torch.searchsorted(cdf, (u * total)[:, None], right=True)[:, 0].clamp(max=cdf.shape[-1] - 1)
    picked = torch.where(total.isfinite() & (total > 0), picked, -1)
    out = [int(t) for t in picked.tolist()]
    if -1 in out:
        raise GenerationError(
            f"the model's next-token distribution is not finite for row {out.index(-1)} (NaN or infinite logits)"
        )
    return out


def next_token_stats(logits: torch.Tensor) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """Per row of ``logits``: log-probabilities, the top two probabilities (``values``, ``indices``) and the
    entropy, the quantities every per-token signal is read from."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    probs = logp.exp()
    top2 = probs.topk(2, dim=-1)
    entropy = -(probs * logp).nan_to_num(0.0).sum(dim=-1)
    return logp, top2, entropy


def read_signals(logp: torch.Tensor, top2: Any, entropy: torch.Tensor, chosen: torch.Tensor) -> list[list[float]]:
    """Per row, from :func:`next_token_stats`: [log-probabilities of ``chosen``, entropies, top-1
    probabilities, top-1 minus top-2], read to the host in one transfer (a GPU stalls at each read)."""
    picked = logp.gather(-1, chosen[:, None].to(logp.device))[:, 0]
    top1 = top2.values[:, 0]
    out: list[list[float]] = torch.stack([picked, entropy, top1, top1 - top2.values[:, 1]]).tolist()
    return out


def token_signals(
    logits: torch.Tensor, chosen: torch.Tensor
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per position: log-probability of the chosen token, entropy, top-1 probability, top-1 minus top-2."""
    logprobs, entropies, top1, margins = read_signals(*next_token_stats(logits), chosen)
    return logprobs, entropies, top1, margins
