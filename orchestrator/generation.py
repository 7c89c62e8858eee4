"""Step-by-step generation on a transformers model, with the KV cache of the accepted prefix kept.

``StepGenerator`` knows nothing of loading or quantization: it receives a model and a tokenizer.
A :class:`Session` is one question (or several, advanced as one batch). Each call to
:meth:`StepGenerator.propose` produces the next step of every question, ``n`` candidates each,
in one batched forward per token; :meth:`StepGenerator.accept` keeps one candidate per question
(its cache rows become the new prefix) or none (the prefix stays as it was). Nothing is ever
re-encoded except an edited step, from its first changed token.

The token loop is one ``_forward(input_ids, position_ids, attention_mask, cache)`` per token with
explicit positions, so a static cache and a compiled forward can replace it on CUDA.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
import torch

from orchestrator.decoding import (
    LineCut,
    RowRecord,
    next_line_verdict,
    next_token_stats,
    read_signals,
    sample_tokens,
    sampling_probs,
    token_signals,
)
from orchestrator.errors import GenerationError, InputError
from orchestrator.kv import RowCache, stack_rows
from orchestrator.steps import Sampling, Step, StopReason

log = structlog.get_logger(__name__)

BOUNDARIES = ("newline", "blank_line", "numbered_item", "none")
_CONTENT = re.compile(r"[^ \t\r\n]")  # anything but blanks counts as content


@dataclass
class Session:
    """The accepted state of one or more questions: token ids, text and the KV cache behind them."""

    prompt_ids: list[list[int]]
    accepted_steps: list[list[Step]]
    finished: list[bool]
    state: RowCache
    calls: list[int]  # proposals made per question, so each call samples from fresh seeds
    pending: RowCache | None = None  # cache of the last proposal, rows = questions x candidates
    pending_steps: list[list[Step]] = field(default_factory=list)
    pending_rows: list[tuple[int, int]] = field(default_factory=list)  # (question, candidate) of each row

    @property
    def size(self) -> int:
        return len(self.prompt_ids)

    def text(self, question: int = 0) -> str:
        """The accepted reasoning of one question, steps joined as generated."""
        return "".join(step.text for step in self.accepted_steps[question])

    def token_ids(self, question: int = 0) -> list[int]:
        """Prompt and accepted step tokens of one question."""
        ids = list(self.prompt_ids[question])
        for step in self.accepted_steps[question]:
            ids.extend(step.token_ids)
        return ids

    def generated_tokens(self, question: int = 0) -> int:
        return sum(len(step) for step in self.accepted_steps[question])


class StepGenerator:
    """Generate reasoning one step at a time, keeping and extending the KV cache of what was accepted."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        boundary: str = "newline",
        stop_strings: Sequence[str] = (),
        max_context: int | None = None,
    ) -> None:
        if boundary not in BOUNDARIES:
            raise InputError(f"unknown step boundary {boundary!r}; choose one of {', '.join(BOUNDARIES)}")
        self.model = model
        self.tokenizer = tokenizer
        self.boundary = boundary
        self.stop_strings = tuple(s for s in stop_strings if s)
        self.device = next(model.parameters()).device
        self.eos_ids = _eos_ids(model, tokenizer)
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else next(iter(self.eos_ids), 0))
        limit = max_context or getattr(model.config, "max_position_embeddings", None) or 32768
        self.max_context = int(limit)
        self._pieces: dict[int, str] = {}
        self.park_ended_rows = True  # rows whose step ended leave the batch (off only to measure what it saves)
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    # ----------------------------------------------------------------- public API

    def start(self, prompts: str | Sequence[int] | Sequence[str | Sequence[int]]) -> Session:
        """Encode one prompt or a batch of prompts (text or token ids) and prefill the cache."""
        batch = _as_batch(prompts)
        ids = [self._encode(p) for p in batch]
        for i, row in enumerate(ids):
            if not row:
                raise InputError(f"prompt {i} is empty")
            if len(row) >= self.max_context:
                raise InputError(f"prompt {i} has {len(row)} tokens; the model's context is {self.max_context}")
        width = max(len(r) for r in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, row in enumerate(ids):
            input_ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        from transformers import DynamicCache

        cache = DynamicCache()
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        logits = self._forward(input_ids, positions, mask, cache, last_only=True)
        state = RowCache(cache, mask.to(self.device), logits[:, -1, :].float())
        return Session(
            prompt_ids=ids,
            accepted_steps=[[] for _ in ids],
            finished=[False] * len(ids),
            state=state,
            calls=[0] * len(ids),
        )

    def propose(
        self, session: Session, n: int = 1, sampling: Sampling | None = None, prefix: Sequence[int] = ()
    ) -> list[list[Step]]:
        """Generate the next step of every unfinished question, ``n`` candidates each, as one batch.

        ``prefix`` forces the first tokens of the step (encoded in one forward, their signals
        teacher-forced): a verified part of a draft, say. Returns one list of candidates per
        question (empty for a finished question). The accepted state is untouched until :meth:`accept`.
        """
        return self.propose_together([(session, n, sampling or Sampling())], prefix)[0]

    def propose_together(
        self, requests: Sequence[tuple[Session, int, Sampling]], prefix: Sequence[int] = ()
    ) -> list[list[list[Step]]]:
        """:meth:`propose` for several sessions in one token loop: how concurrent solves share the model.

        Each request keeps its own sampling, seeds and step budget (greedy drafts and sampled
        candidates share one loop); ``prefix`` is common to all. Returns, per request, what
        :meth:`propose` would have returned for it alone.
        """
        if not requests:
            return []
        for _, n, _ in requests:
            if n < 1:
                raise InputError("n must be at least 1")
        if any(n > 1 and s.temperature <= 0 and s.temperature_hook is None for _, n, s in requests):
            log.debug("greedy_candidates_identical", n=max(n for _, n, _ in requests))
        works: list[RowCache] = []
        samplings: list[Sampling] = []
        seeds: list[int | None] = []
        limits: list[int] = []
        lives: list[list[int]] = []
        for session, n, samp in requests:
            live = [q for q in range(session.size) if not session.finished[q]]
            lives.append(live)
            session.pending_steps = [[] for _ in range(session.size)]
            if not live:
                continue
            works.append(session.state.select(torch.tensor([q for q in live for _ in range(n)], device=self.device)))
            counts = session.state.valid_counts()
            for q in live:
                for i in range(n):
                    seeds.append(None if samp.seed is None else samp.seed + 7919 * session.calls[q] + i)
                    budget = self.max_context - int(counts[q]) - 1
                    limits.append(min(samp.max_step_tokens, max(budget, 0)))
                    samplings.append(samp)
        work = works[0] if len(works) == 1 else stack_rows(works) if works else None
        steps = self._run_step(work, samplings, seeds, limits, [int(t) for t in prefix]) if work is not None else []
        offset = 0
        out: list[list[list[Step]]] = []
        for (session, n, _), live in zip(requests, lives, strict=True):
            if not live:
                session.pending = None
                out.append(session.pending_steps)
                continue
            rows = len(live) * n
            for k, step in enumerate(steps[offset : offset + rows]):
                session.pending_steps[live[k // n]].append(step)
            for q in live:
                session.calls[q] += 1
            assert work is not None
            mine = torch.arange(offset, offset + rows, device=self.device)
            session.pending = work if len(works) == 1 else work.select(mine)
            session.pending_rows = [(q, i) for q in live for i in range(n)]
            offset += rows
            out.append(session.pending_steps)
        return out

    def accept(self, session: Session, choices: int | Sequence[int | None] | None = 0) -> None:
        """Keep candidate ``choices[q]`` of question ``q`` (``None``: reject them all, keep the old prefix)."""
        if session.pending is None:
            raise InputError("no proposal to accept: call propose() first")
        picks = _per_question(choices, session.size)
        parts: list[RowCache] = []
        for q in range(session.size):
            pick = picks[q]
            cands = session.pending_steps[q]
            if pick is None or not cands:
                parts.append(session.state.select(torch.tensor([q], device=self.device)))
                continue
            if not 0 <= pick < len(cands):
                raise InputError(f"question {q}: candidate {pick} does not exist ({len(cands)} proposed)")
            row = session.pending_rows.index((q, pick))
            parts.append(session.pending.select(torch.tensor([row], device=self.device)))
            step = cands[pick]
            session.accepted_steps[q].append(step)
            session.finished[q] = session.finished[q] or step.finished
        session.state = stack_rows(parts) if len(parts) > 1 else parts[0]
        if session.state.hole_fraction() > 0.25:
            session.state.compact()
        session.pending = None
        session.pending_steps = []

    def reject(self, session: Session) -> None:
        """Drop the last proposal; the accepted prefix and its cache are unchanged."""
        session.pending = None
        session.pending_steps = []

    def accept_text(self, session: Session, text: str, question: int = 0, candidate: int = 0) -> Step:
        """Accept an edited version of a proposed step (a corrected claim, say).

        The cache keeps the candidate's tokens up to the first one that differs from the
        edit, and only the rest of the edited text is encoded (one forward).
        """
        if session.pending is None or not session.pending_steps[question]:
            raise InputError("no proposal to edit: call propose() first")
        if not text:
            raise InputError("an edited step cannot be empty")
        original = session.pending_steps[question][candidate]
        new_ids = self._encode(text)
        common = 0
        for a, b in zip(original.token_ids, new_ids, strict=False):
            if a != b:
                break
            common += 1
        # Keep the edited question's row (prefix + the shared part of the step); other questions keep their state.
        row = session.pending_rows.index((question, candidate))
        edited = session.pending.select(torch.tensor([row], device=self.device))
        base = int(session.state.valid_counts()[question])
        keep_len = _physical_index_after(edited.mask[0], base + common)
        edited.crop(keep_len)
        rest = new_ids[common:]
        if common == len(new_ids) and common == len(original.token_ids):
            edited = session.pending.select(torch.tensor([row], device=self.device))
        elif rest:
            positions = torch.arange(base + common, base + len(new_ids), device=self.device)[None, :]
            ones = torch.ones((1, len(rest)), dtype=torch.long, device=self.device)
            mask = torch.cat([edited.mask, ones], dim=1)
            inp = torch.tensor([rest], device=self.device)
            logits = self._forward(inp, positions, mask, edited.cache, last_only=True)
            edited.mask = mask
            edited.next_logits = logits[:, -1, :].float()
        else:  # the edit is a strict prefix of the original: logits after it need one forward of its last token
            edited.crop(keep_len - 1)
            last = torch.tensor([[new_ids[-1]]], device=self.device)
            positions = torch.tensor([[base + len(new_ids) - 1]], device=self.device)
            mask = torch.cat([edited.mask, torch.ones((1, 1), dtype=torch.long, device=self.device)], dim=1)
            logits = self._forward(last, positions, mask, edited.cache)
            edited.mask = mask
            edited.next_logits = logits[:, -1, :].float()
        step = Step(
            text=text,
            token_ids=new_ids,
            tokens=[self.piece(t) for t in new_ids],
            logprobs=original.logprobs[:common] + [0.0] * len(rest),
            entropies=original.entropies[:common] + [0.0] * len(rest),
            margins=original.margins[:common] + [1.0] * len(rest),
            top1_probs=original.top1_probs[:common] + [1.0] * len(rest),
            stop_reason=original.stop_reason,
            finished=original.finished,
            meta={"edited": True, "kept_tokens": common, "reencoded_tokens": len(rest)},
        )
        parts = [
            edited if q == question else session.state.select(torch.tensor([q], device=self.device))
            for q in range(session.size)
        ]
        session.state = stack_rows(parts) if len(parts) > 1 else parts[0]
        session.accepted_steps[question].append(step)
        session.finished[question] = session.finished[question] or step.finished
        session.pending = None
        session.pending_steps = []
        return step

    def force_accept(self, session: Session, text: str, question: int = 0) -> Step:
        """Append a step that was not proposed in the current proposal (an older draft, a resumed
        solve, a student's line): its tokens are encoded in one forward and become the prefix."""
        if not text:
            raise InputError("a step cannot be empty")
        ids = self._encode(text)
        base = int(session.state.valid_counts()[question])
        row = session.state.select(torch.tensor([question], device=self.device))
        row.compact()
        positions = torch.arange(base, base + len(ids), device=self.device)[None, :]
        mask = torch.cat([row.mask, torch.ones((1, len(ids)), dtype=torch.long, device=self.device)], dim=1)
        logits = self._forward(torch.tensor([ids], device=self.device), positions, mask, row.cache, last_only=True)
        row.mask = mask
        row.next_logits = logits[:, -1, :].float()
        step = Step(
            text=text,
            token_ids=ids,
            tokens=[self.piece(t) for t in ids],
            logprobs=[0.0] * len(ids),
            entropies=[0.0] * len(ids),
            margins=[1.0] * len(ids),
            top1_probs=[1.0] * len(ids),
            meta={"forced": True},
        )
        parts = [
            row if q == question else session.state.select(torch.tensor([q], device=self.device))
            for q in range(session.size)
        ]
        session.state = stack_rows(parts) if len(parts) > 1 else parts[0]
        session.accepted_steps[question].append(step)
        session.pending = None
        session.pending_steps = []
        return step

    def piece(self, token_id: int) -> str:
        """The text of one token on its own (cached), for key-token classification."""
        got = self._pieces.get(token_id)
        if got is None:
            got = self.tokenizer.decode([token_id])
            self._pieces[token_id] = got
        return got

    # ----------------------------------------------------------------- internals

    def _encode(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            return list(self.tokenizer(prompt, add_special_tokens=False).input_ids)
        return [int(t) for t in prompt]

    @torch.no_grad()
    def _forward(
        self, input_ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, cache: Any, last_only: bool = False
    ) -> torch.Tensor:
        """Logits of every fed position, or with ``last_only`` of the last one alone: a prefill then skips the
        vocabulary projection of the whole prompt (for 32 prompts of 200 tokens, ~4 GB of fp32 logits)."""
        extra = {"logits_to_keep": 1} if last_only and self._keeps_logits else {}
        out = self.model(
            input_ids=input_ids.to(self.device),
            position_ids=positions.to(self.device),
            attention_mask=mask.to(self.device),
            past_key_values=cache,
            use_cache=True,
            **extra,
        )
        return out.logits

    @torch.no_grad()
    def _run_step(
        self,
        work: RowCache,
        samplings: Sequence[Sampling],
        seeds: list[int | None],
        limit: list[int],
        prefix: list[int] | None = None,
    ) -> list[Step]:
        """Generate one step on every row of ``work``, each row sampling its own way and writing at
        most ``limit`` tokens."""
        rows = work.rows
        gens = [None if s is None else torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        recs = [RowRecord() for _ in range(rows)]
        active = [True] * rows
        if prefix:
            self._feed_prefix(work, prefix, recs)
        for r in range(rows):
            if limit[r] <= len(recs[r].ids):
                active[r] = False
                recs[r].reason = "max_tokens"
        final_logits = work.next_logits.clone()
        logits = work.next_logits
        # Rows that ended their step leave the batch (their cache parked) once they are a quarter of it:
        # a finished row fed padding would cost a full row of compute at every later token.
        cur, members = work, list(range(rows))  # cur's row i is row members[i] of work
        parked: dict[int, RowCache] = {}
        while any(active):
            ended = [i for i, r in enumerate(members) if not active[r]]
            if self.park_ended_rows and ended and 4 * len(ended) >= len(members):
                for i in ended:
                    parked[members[i]] = cur.select(torch.tensor([i], device=self.device))
                keep = [i for i, r in enumerate(members) if active[r]]
                cur = cur.select(torch.tensor(keep, device=self.device))
                members = [members[i] for i in keep]
            slot = {r: i for i, r in enumerate(members)}
            act = [r for r in members if active[r]]
            chosen = self._choose(logits, act, recs, samplings, gens)
            feed = torch.full((len(members), 1), self.pad_id, dtype=torch.long)
            live_now = torch.zeros((len(members), 1), dtype=torch.long)
            for r, tok in zip(act, chosen, strict=True):
                rec, i = recs[r], slot[r]
                if tok in self.eos_ids:
                    rec.finished, rec.reason = True, "eos"
                    active[r] = False
                    continue
                rec.add(tok, self.piece(tok))
                if self.boundary == "numbered_item" and rec.cut is not None:
                    verdict = next_line_verdict(rec.text[rec.cut.text_len :])
                    if rec.cut.logits is not None and (
                        verdict == "item" or (verdict == "open" and len(rec.ids) >= limit[r])
                    ):
                        # The next line starts a new item: the step ends at the newline before it.
                        cur.mask[i, rec.cut.physical :] = 0
                        final_logits[r] = rec.cut.logits
                        rec.truncate(rec.cut.n_tokens)
                        rec.reason, active[r] = "boundary", False
                        continue
                    if verdict in ("blank", "same"):
                        rec.cut = None
                        if verdict == "blank":
                            feed[i, 0], live_now[i, 0] = tok, 1
                            rec.reason, active[r] = "boundary", False
                            continue
                feed[i, 0] = tok
                live_now[i, 0] = 1
                reason = self._step_end(rec, limit[r])
                if reason == "cut":
                    rec.cut = LineCut(len(rec.ids), len(rec.text), cur.length + 1, None)
                elif reason is not None:
                    rec.reason = reason
                    active[r] = False
            if not bool(live_now.any()):
                break
            positions = cur.valid_counts()[:, None]
            cur.mask = torch.cat([cur.mask, live_now.to(cur.mask.device)], dim=1)
            # The rows fed, as index tensors uploaded before the forward is queued (an upload waits for the queue).
            fed = [i for i in range(len(members)) if live_now[i, 0]]
            rows_fed = torch.tensor(fed, device=self.device)
            targets = torch.tensor([members[i] for i in fed], device=self.device)
            out = self._forward(feed, positions, cur.mask, cur.cache)[:, -1, :].float()
            final_logits[targets] = out[rows_fed]
            for i, r in enumerate(members):
                cut = recs[r].cut
                if cut is not None and cut.logits is None:
                    cut.logits = out[i].clone()
            logits = final_logits
        if parked:  # put the rows back together, in their order
            slot = {r: i for i, r in enumerate(members)}
            one = lambda r: cur.select(torch.tensor([slot[r]], device=self.device))  # noqa: E731
            whole = stack_rows([parked[r] if r in parked else one(r) for r in range(rows)])
            work.cache, work.mask = whole.cache, whole.mask
        work.next_logits = final_logits
        return [rec.to_step() for rec in recs]

    def _feed_prefix(self, work: RowCache, prefix: list[int], recs: list[RowRecord]) -> None:
        """Encode forced step tokens for every row in one forward, recording their signals."""
        rows, k = work.rows, len(prefix)
        ids = torch.tensor([prefix] * rows, device=self.device)
        positions = work.valid_counts()[:, None] + torch.arange(k, device=self.device)[None, :]
        work.mask = torch.cat([work.mask, torch.ones((rows, k), dtype=torch.long, device=work.mask.device)], dim=1)
        out = self._forward(ids, positions, work.mask, work.cache).float()
        before = torch.cat([work.next_logits[:, None, :], out[:, :-1, :]], dim=1)  # logits that predicted each token
        for r in range(rows):
            lp, ent, top1, margin = token_signals(before[r], ids[r])
            for j, tok in enumerate(prefix):
                recs[r].add(tok, self.piece(tok))
                recs[r].logprobs.append(lp[j])
                recs[r].entropies.append(ent[j])
                recs[r].top1.append(top1[j])
                recs[r].margins.append(margin[j])
        work.next_logits = out[:, -1, :]

    @torch.no_grad()
    def greedy_agreement(self, session: Session, token_ids: Sequence[int], question: int = 0) -> int:
        """How many leading tokens of a draft step the model (as it is now) would write greedily itself.

        One parallel forward over the draft, as speculative decoding verifies a draft; the
        session is not changed.
        """
        ids = [int(t) for t in token_ids]
        if not ids:
            return 0
        row = session.state.select(torch.tensor([question], device=self.device))
        base = int(row.valid_counts()[0])
        positions = torch.arange(base, base + len(ids), device=self.device)[None, :]
        mask = torch.cat([row.mask, torch.ones((1, len(ids)), dtype=torch.long, device=row.mask.device)], dim=1)
        out = self._forward(torch.tensor([ids], device=self.device), positions, mask, row.cache)[0].float()
        preds = [int(row.next_logits[0].argmax())] + [int(t) for t in out[:-1].argmax(dim=-1)]
        agreed = 0
        for want, got in zip(ids, preds, strict=True):
            if want != got:
                break
            agreed += 1
        return agreed

    def _choose(
        self,
        logits: torch.Tensor,
        act: list[int],
        recs: list[RowRecord],
        samplings: Sequence[Sampling],
        gens: list[torch.Generator | None],
    ) -> list[int]:
        sub = logits[act].float()
        logp, top2, entropy = next_token_stats(sub)
        # Reads to the host are batched (a GPU stalls at each): greedy tokens, draws and signals once per token.
        chosen: list[int] = top2.indices[:, 0].tolist()
        hot: list[tuple[int, float]] = []  # (row of sub, temperature) of the rows that sample
        for j, r in enumerate(act):
            sampling = samplings[r]
            temp = sampling.temperature
            if sampling.temperature_hook is not None:
                temp = sampling.temperature_hook(recs[r].ids, chosen[j])
                if not math.isfinite(temp):
                    raise GenerationError(f"the temperature hook returned {temp}")
            if temp > 0:
                hot.append((j, temp))
        if hot:
            dists = [sampling_probs(sub[j], temp, samplings[act[j]].top_p) for j, temp in hot]
            for (j, _), tok in zip(hot, sample_tokens(dists, [gens[act[j]] for j, _ in hot]), strict=True):
                chosen[j] = tok
        signals = read_signals(logp, top2, entropy, torch.tensor(chosen, device=logp.device))
        if any(math.isnan(p) for p in signals[2]):  # greedy rows too: argmax over NaN is arbitrary, not an answer
            raise GenerationError("the model's next-token logits are not finite (NaN or infinite)")
        for j, r in enumerate(act):
            rec = recs[r]
            rec.logprobs.append(signals[0][j])
            rec.entropies.append(signals[1][j])
            rec.top1.append(signals[2][j])
            rec.margins.append(signals[3][j])
        return chosen

    def _step_end(self, rec: RowRecord, limit: int) -> StopReason | Literal["cut"] | None:
        text = rec.text
        for stop in self.stop_strings:
            if stop in text[-(len(stop) + len(rec.pieces[-1])) :]:
                return "stop_string"
        if self.boundary != "none" and "\n" in rec.pieces[-1] and _CONTENT.search(text):
            if self.boundary == "newline":
                return "boundary"
            if text.rstrip(" \t").endswith("\n\n"):
                return "boundary"
            if self.boundary == "numbered_item" and rec.cut is None and text.endswith("\n"):
                return "cut"  # maybe the end of the item: decided once the next line shows how it starts
        if len(rec.ids) >= limit:
            return "max_tokens"
        return None


def _physical_index_after(mask_row: torch.Tensor, n_valid: int) -> int:
    """Length of the shortest physical prefix of a row that holds ``n_valid`` real tokens."""
    if n_valid <= 0:
        return 0
    cum = mask_row.cumsum(0)
    hits = (cum >= n_valid).nonzero()
    return int(hits[0]) + 1 if len(hits) else int(mask_row.shape[0])


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    gen_cfg = getattr(model, "generation_config", None)
    for source in (getattr(gen_cfg, "eos_token_id", None), tokenizer.eos_token_id):
        if source is None:
            continue
        ids.update(int(x) for x in (source if isinstance(source, Iterable) else [source]))
    return ids


def _as_batch(prompts: str | Sequence[int] | Sequence[str | Sequence[int]]) -> list[str | Sequence[int]]:
    if isinstance(prompts, str):
        return [prompts]
    items = list(prompts)
    if not items:
        raise InputError("no prompt given")
    if all(isinstance(x, int) for x in items):
        return [[int(x) for x in items]]  # type: ignore[arg-type]
    return items  # type: ignore[return-value]


def _per_question(choices: int | Sequence[int | None] | None, size: int) -> list[int | None]:
    if choices is None or isinstance(choices, int):
        return [choices] * size
    picks = list(choices)
    if len(picks) != size:
        raise InputError(f"{len(picks)} choices given for {size} questions")
    return picks


def perplexity(step: Step) -> float:
    """exp of the mean negative log-likelihood of a step's tokens (1.0 for an empty step)."""
    return math.exp(-step.mean_logprob) if step.token_ids else 1.0
