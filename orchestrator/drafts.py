"""Shared pieces of the solve graph's nodes: draft records, sampling settings, events and trace entries.

A draft is the step under consideration, kept as plain data (it goes through the checkpointer).
"""

from __future__ import annotations

from typing import Any

import structlog
from langgraph.runtime import Runtime

from orchestrator.confidence import adaptive_temperature_hook, decide, score_step
from orchestrator.state import SolveContext, SolveState
from orchestrator.steps import Sampling, Step

log = structlog.get_logger("orchestrator.graph")


def ctx_of(runtime: Runtime[SolveContext]) -> SolveContext:
    assert runtime.context is not None, "solve context missing"
    return runtime.context


def emit(ctx: SolveContext, kind: str, **data: Any) -> None:
    log.info(kind, **{k: v for k, v in data.items() if k not in ("text", "claims")})
    if ctx.on_event is not None:
        ctx.on_event({"event": kind, **data})


def bump(state: SolveState, *kinds: str) -> dict[str, int]:
    counts = dict(state.get("counts") or {})
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def sync_stream(ctx: SolveContext, state: SolveState) -> None:
    """Bring the stream's prefix in line with state: a no-op normally, a rebuild after a resume."""
    ctx.stream.sync(state["prompt_ids"], [s["text"] for s in state.get("steps") or []])


def step_index(state: SolveState) -> int:
    return len(state.get("steps") or [])


def draft_record(
    ctx: SolveContext, step: Step, origin: str, proposal: int, cand: int, attempt: int = 0
) -> dict[str, Any]:
    conf = score_step(step, ctx.policy.confidence)
    return {
        "text": step.text,
        "token_ids": list(step.token_ids),
        "n_tokens": len(step.token_ids),
        "finished": step.finished,
        "stop_reason": step.stop_reason,
        "origin": origin,
        "proposal": proposal,  # the stream's proposal counter: tells whether the draft's cache rows still exist
        "cand": cand,
        "attempt": attempt,
        "confidence": round(conf.score, 4),
        "confidence_detail": {
            "mean_top1": round(conf.mean_top1, 4),
            "min_top1": round(conf.min_top1, 4),
            "mean_entropy": round(conf.mean_entropy, 4),
            "weakest": None if conf.weakest is None else conf.weakest.token,
            "weakest_key": None if conf.weakest_key is None else conf.weakest_key.token,
        },
        "verdicts": [],
        "edited": False,
        "flags": [],
    }


def sampling_for(ctx: SolveContext, state: SolveState, *, resample: bool) -> Sampling:
    policy = ctx.policy
    left = policy.steps.max_total_tokens - int(state.get("tokens", 0))
    max_step = max(1, min(policy.steps.max_step_tokens, left))
    base_seed = ctx.seed if ctx.seed is not None else policy.sampling.seed
    seed = None if base_seed is None else base_seed + 1000 * step_index(state) + 97 * int(state.get("attempts", 0))
    if resample:
        temp, top_p = policy.resample.temperature, policy.resample.top_p
    else:
        temp, top_p = policy.sampling.temperature, policy.sampling.top_p
    hook = None
    if temp > 0 and policy.adaptive_temperature.enabled:
        at = policy.adaptive_temperature
        hook = adaptive_temperature_hook(ctx.stream.piece, at.key_temperature, at.other_temperature)
    return Sampling(temperature=temp, top_p=top_p, seed=seed, max_step_tokens=max_step, temperature_hook=hook)


def candidate_node(state: SolveState, draft: dict[str, Any], reason: str) -> dict[str, Any]:
    k = step_index(state)
    return {
        "id": f"s{k}-{draft['origin']}-a{draft.get('attempt', 0)}-c{draft['cand']}",
        "kind": "candidate",
        "label": f"candidate ({draft['origin']})",
        "text": draft["text"],
        "confidence": draft["confidence"],
        "data": {"attempt": state.get("attempts", 0), "rank": draft["cand"], "reason": reason},
    }


# ----------------------------------------------------------------- nodes


def decide_draft(ctx: SolveContext, state: SolveState, draft: dict[str, Any]) -> str:
    policy = ctx.policy
    if not policy.confidence.enabled or not draft["text"].strip():
        return "accept"
    can_resample = policy.resample.enabled and int(state.get("attempts", 0)) < policy.resample.max_attempts
    can_escalate = (
        policy.escalation.enabled
        and bool(ctx.escalation_layers)
        and int(state.get("escalations", 0)) < policy.escalation.max_per_solve
        and draft["origin"] != "escalation"
    )
    conf = _Score(draft["confidence"])
    return decide(
        conf,  # type: ignore[arg-type]
        policy.confidence,
        can_resample=can_resample,
        can_escalate=can_escalate,
        escalate_immediately=policy.escalation.when == "immediately",
    )


class _Score:
    """The one field ``decide`` reads, rebuilt from the serialised draft."""

    def __init__(self, score: float) -> None:
        self.score = score


def verifier_context(state: SolveState) -> dict[str, Any]:
    return {"question": state.get("question", ""), "previous": [s["text"] for s in state.get("steps") or []]}


# ----------------------------------------------------------------- routing
