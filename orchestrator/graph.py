"""The LangGraph state graph that drives a solve, one step at a time.

::

    propose ─► monitor ──accept──► verify ──pass──► accept ──more──► propose
                  │ low              ▲  │ wrong          │ done
                  ▼                  │  ▼                ▼
               resample ─(still low)─► escalate       finalize ─► END
                  ▲                  │  repair ──► verify / accept / resample
                  └──────────────────┘

Each node reads the draft step from state, calls the step stream or the verifiers from the
runtime context, and writes plain data back: the accepted steps, counters of interventions
and the nodes and edges of the reasoning trace. Routing functions return ``Literal`` names,
so the drawn graph is exact.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import structlog
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from orchestrator.confidence import adaptive_temperature_hook, decide, score_step
from orchestrator.state import SolveContext, SolveState
from orchestrator.steps import Sampling, Step
from orchestrator.verdicts import best_candidate, chain_value, run_verifiers, verdict_rank

log = structlog.get_logger(__name__)

NODE_NAMES = ("propose", "monitor", "resample", "escalate", "verify", "repair", "accept", "finalize")


# ----------------------------------------------------------------- helpers


def _ctx(runtime: Runtime[SolveContext]) -> SolveContext:
    assert runtime.context is not None, "solve context missing"
    return runtime.context


def _emit(ctx: SolveContext, kind: str, **data: Any) -> None:
    log.info(kind, **{k: v for k, v in data.items() if k not in ("text", "claims")})
    if ctx.on_event is not None:
        ctx.on_event({"event": kind, **data})


def _bump(state: SolveState, *kinds: str) -> dict[str, int]:
    counts = dict(state.get("counts") or {})
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _sync(ctx: SolveContext, state: SolveState) -> None:
    """Bring the stream's prefix in line with state: a no-op normally, a rebuild after a resume."""
    ctx.stream.sync(state["prompt_ids"], [s["text"] for s in state.get("steps") or []])


def _index(state: SolveState) -> int:
    return len(state.get("steps") or [])


def _record(ctx: SolveContext, step: Step, origin: str, proposal: int, cand: int, attempt: int = 0) -> dict[str, Any]:
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


def _sampling(ctx: SolveContext, state: SolveState, *, resample: bool) -> Sampling:
    policy = ctx.policy
    left = policy.steps.max_total_tokens - int(state.get("tokens", 0))
    max_step = max(1, min(policy.steps.max_step_tokens, left))
    base_seed = ctx.seed if ctx.seed is not None else policy.sampling.seed
    seed = None if base_seed is None else base_seed + 1000 * _index(state) + 97 * int(state.get("attempts", 0))
    if resample:
        temp, top_p = policy.resample.temperature, policy.resample.top_p
    else:
        temp, top_p = policy.sampling.temperature, policy.sampling.top_p
    hook = None
    if temp > 0 and policy.adaptive_temperature.enabled:
        at = policy.adaptive_temperature
        hook = adaptive_temperature_hook(ctx.stream.piece, at.key_temperature, at.other_temperature)
    return Sampling(temperature=temp, top_p=top_p, seed=seed, max_step_tokens=max_step, temperature_hook=hook)


def _candidate_node(state: SolveState, draft: dict[str, Any], reason: str) -> dict[str, Any]:
    k = _index(state)
    return {
        "id": f"s{k}-{draft['origin']}-a{draft.get('attempt', 0)}-c{draft['cand']}",
        "kind": "candidate",
        "label": f"candidate ({draft['origin']})",
        "text": draft["text"],
        "confidence": draft["confidence"],
        "data": {"attempt": state.get("attempts", 0), "rank": draft["cand"], "reason": reason},
    }


# ----------------------------------------------------------------- nodes


def propose(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Draft the next step (greedy by default), continuing the cached prefix."""
    ctx = _ctx(runtime)
    _sync(ctx, state)
    step = ctx.stream.propose(1, _sampling(ctx, state, resample=False))[0]
    draft = _record(ctx, step, "greedy", ctx.stream.proposal_id, 0)
    return {
        "draft": draft,
        "attempts": 0,
        "repairs": 0,
        "tokens_spent": int(state.get("tokens_spent", 0)) + len(step.token_ids),
    }


def monitor(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Decide from the draft's confidence: accept as is, re-sample, or escalate."""
    ctx = _ctx(runtime)
    draft = dict(state["draft"] or {})
    decision = _decision(ctx, state, draft)
    draft["decision"] = decision
    _emit(ctx, "monitor", step=_index(state), confidence=draft["confidence"], decision=decision)
    return {"draft": draft}


def _decision(ctx: SolveContext, state: SolveState, draft: dict[str, Any]) -> str:
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
    conf = _FakeConf(draft["confidence"])
    return decide(
        conf,  # type: ignore[arg-type]
        policy.confidence,
        can_resample=can_resample,
        can_escalate=can_escalate,
        escalate_immediately=policy.escalation.when == "immediately",
    )


class _FakeConf:
    """The one field ``decide`` reads, rebuilt from the serialised draft."""

    def __init__(self, score: float) -> None:
        self.score = score


def resample(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Draw N candidates in one batched call; keep the best by verdict, then confidence."""
    ctx = _ctx(runtime)
    old = dict(state["draft"] or {})
    n = ctx.policy.resample.n_candidates
    _sync(ctx, state)
    steps = ctx.stream.propose(n, _sampling(ctx, state, resample=True))
    pid = ctx.stream.proposal_id
    attempt = int(state.get("attempts", 0)) + 1
    pool = [old] + [_record(ctx, s, "resample", pid, i, attempt) for i, s in enumerate(steps)]
    for rec in pool:
        if not rec["verdicts"]:
            rec["verdicts"] = run_verifiers(ctx.verifiers, rec["text"], _context(state))
    repairable = ctx.policy.repair.on_wrong == "correct"
    best = best_candidate(pool, repairable=repairable)
    nodes = (
        [_candidate_node(state, r, "lower rank") for r in pool if r is not best]
        if ctx.policy.trace.keep_candidates
        else []
    )
    best = dict(best)
    attempts = int(state.get("attempts", 0)) + 1
    if verdict_rank(best, repairable=repairable) >= 1.5:
        best["decision"] = "accept"  # verified, or wrong in a way the repair fixes: no need to look further
    else:
        best["decision"] = _decision(ctx, {**state, "attempts": attempts}, best)
    _emit(
        ctx,
        "resample",
        step=_index(state),
        n=n,
        attempt=attempts,
        chosen=best["cand"],
        origin=best["origin"],
        confidence=best["confidence"],
        decision=best["decision"],
    )
    spent = sum(len(s.token_ids) for s in steps)
    return {
        "draft": best,
        "attempts": attempts,
        "counts": _bump(state, "resample"),
        "tokens_spent": int(state.get("tokens_spent", 0)) + spent,
        "trace_nodes": nodes,
        "trace_edges": [
            {"source": nd["id"], "target": f"s{_index(state)}", "kind": "candidate", "label": "rejected"}
            for nd in nodes
        ],
    }


def escalate(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Redo the step with high-precision copies of the policy's layers swapped in, then restore.

    ``regenerate`` writes the step afresh; ``verify`` scores the draft in one forward and keeps it
    up to the first token where the escalated model's greedy choice differs, regenerating only the rest.
    """
    ctx = _ctx(runtime)
    old = dict(state["draft"] or {})
    layers = ctx.escalation_layers
    mode = ctx.policy.escalation.mode
    greedy = replace(_sampling(ctx, state, resample=False), temperature=0.0, temperature_hook=None)
    _sync(ctx, state)
    kept_tokens = 0
    with ctx.stream.escalated(layers):
        if mode == "verify" and old.get("token_ids"):
            kept_tokens = ctx.stream.agreement(old["token_ids"])
        if mode == "verify" and kept_tokens == len(old.get("token_ids") or []) and kept_tokens:
            step = None  # the escalated model would write the draft itself: keep it as it is
        else:
            step = ctx.stream.propose(1, greedy, prefix=(old.get("token_ids") or [])[:kept_tokens])[0]
    if step is None:
        new = {**old, "origin": "escalation", "verified": True}
        generated = 0
    else:
        new = _record(ctx, step, "escalation", ctx.stream.proposal_id, 0)
        generated = len(step.token_ids) - kept_tokens
    new["verdicts"] = run_verifiers(ctx.verifiers, new["text"], _context(state))
    if old.get("verdicts") is None or not old.get("verdicts"):
        old["verdicts"] = run_verifiers(ctx.verifiers, old["text"], _context(state))
    # Keep the escalated draft unless the old one is strictly better verified.
    fix = ctx.policy.repair.on_wrong == "correct"
    chosen = old if verdict_rank(old, repairable=fix) > verdict_rank(new, repairable=fix) else new
    chosen = dict(chosen)
    chosen["decision"] = "accept"
    k = _index(state)
    esc_id = f"s{k}-esc{int(state.get('escalations', 0))}"
    node = {
        "id": esc_id,
        "kind": "escalation",
        "label": f"escalated {len(layers)} layers",
        "text": new["text"],
        "confidence": new["confidence"],
        "data": {
            "layers": list(layers),
            "mode": mode,
            "kept_tokens": kept_tokens,
            "before_score": old["confidence"],
            "after_score": new["confidence"],
            "kept": chosen["origin"],
        },
    }
    _emit(
        ctx,
        "escalate",
        step=k,
        layers=list(layers),
        before=old["confidence"],
        after=new["confidence"],
        kept=chosen["origin"],
        text=new["text"],
    )
    return {
        "draft": chosen,
        "escalations": int(state.get("escalations", 0)) + 1,
        "counts": _bump(state, "escalate"),
        "tokens_spent": int(state.get("tokens_spent", 0)) + generated,
        "trace_nodes": [node],
        "trace_edges": [{"source": esc_id, "target": f"s{k}", "kind": "escalation", "label": "escalation"}],
    }


def verify(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Run the policy's verifiers on the draft (three-valued: only "wrong" triggers repair)."""
    ctx = _ctx(runtime)
    draft = dict(state["draft"] or {})
    draft["verdicts"] = run_verifiers(ctx.verifiers, draft["text"], _context(state))
    statuses = [v["status"] for v in draft["verdicts"]]
    _emit(ctx, "verify", step=_index(state), statuses=statuses)
    return {"draft": draft}


def repair(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Handle a wrong claim per policy: correct it in place, re-sample, or flag it and go on."""
    ctx = _ctx(runtime)
    draft = dict(state["draft"] or {})
    how = ctx.policy.repair.on_wrong
    k = _index(state)
    wrong = [v for v in draft["verdicts"] if v["status"] == "wrong"]
    corrected = next((v.get("corrected_text") for v in wrong if v.get("corrected_text")), None)
    update: dict[str, Any] = {"repairs": int(state.get("repairs", 0)) + 1}
    if how == "correct" and corrected and corrected != draft["text"]:
        cid = f"s{k}-fix{update['repairs']}"
        claims = [c for v in wrong for c in v.get("claims", []) if c.get("status") == "wrong"]
        node = {
            "id": cid,
            "kind": "correction",
            "label": "corrected",
            "text": corrected,
            "confidence": None,
            "data": {"before": draft["text"], "after": corrected, "claims": claims},
        }
        _emit(ctx, "correct", step=k, before=draft["text"], after=corrected)
        draft.update(text=corrected, edited=True, origin="correction", verdicts=[])
        draft.setdefault("corrected_from", node["data"]["before"])
        update.update(
            draft=draft,
            counts=_bump(state, "correct"),
            trace_nodes=[node],
            trace_edges=[{"source": cid, "target": f"s{k}", "kind": "correction", "label": "fixed"}],
        )
    elif how == "resample" and ctx.policy.resample.enabled:
        draft["decision"] = "resample"
        _emit(ctx, "repair_resample", step=k)
        update.update(draft=draft, counts=_bump(state, "repair_resample"))
    else:
        draft["flags"] = [*draft.get("flags", []), "wrong claim kept"]
        _emit(ctx, "flag", step=k, text=draft["text"])
        update.update(draft=draft, counts=_bump(state, "flag"))
    return update


def accept(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Append the draft to the accepted prefix (cache extended) and record it in the trace."""
    ctx = _ctx(runtime)
    draft = dict(state["draft"] or {})
    stream = ctx.stream
    _sync(ctx, state)
    fresh = draft["proposal"] == stream.proposal_id
    if draft["edited"]:
        stream.accept_text(draft["text"], draft["cand"] if fresh else None)
    elif fresh:
        stream.accept(draft["cand"])
    else:  # the draft came from an earlier proposal (kept over re-sampled ones), or the solve was resumed
        stream.accept_text(draft["text"], None)
    k = _index(state)
    sid = f"s{k}"
    prev = "q" if k == 0 else f"s{k - 1}"
    record = {
        key: draft[key]
        for key in (
            "text",
            "n_tokens",
            "origin",
            "confidence",
            "confidence_detail",
            "verdicts",
            "flags",
            "stop_reason",
            "finished",
        )
    }
    record["index"] = k
    if draft.get("corrected_from"):
        record["corrected_from"] = draft["corrected_from"]
    nodes = [
        {
            "id": sid,
            "kind": "step",
            "label": f"step {k + 1}",
            "text": draft["text"],
            "confidence": draft["confidence"],
            "data": {
                "index": k + 1,  # 1-based, as people count steps
                "origin": draft["origin"],
                "tokens": draft["n_tokens"],
                "decision": draft.get("decision", "accept"),
            },
        }
    ]
    edges = [{"source": prev, "target": sid, "kind": "next", "label": ""}]
    keep_all = ctx.policy.trace.keep_all_verdicts
    for j, v in enumerate(draft["verdicts"]):
        if v["status"] == "unknown" and not keep_all:
            continue
        vid = f"{sid}-v{j}"
        nodes.append(
            {
                "id": vid,
                "kind": "verdict",
                "label": f"{v['verifier']}: {v['status']}",
                "text": "",
                "confidence": None,
                "data": v,
            }
        )
        edges.append({"source": sid, "target": vid, "kind": "verdict", "label": v["status"]})
    tokens = int(state.get("tokens", 0)) + int(draft["n_tokens"])
    policy = ctx.policy
    done = bool(draft["finished"]) or k + 1 >= policy.steps.max_steps or tokens >= policy.steps.max_total_tokens
    _emit(
        ctx,
        "step",
        index=k,
        text=draft["text"],
        origin=draft["origin"],
        confidence=draft["confidence"],
        verdicts=[v["status"] for v in draft["verdicts"]],
        claims=[c for v in draft["verdicts"] for c in v.get("claims", [])],
    )
    return {
        "steps": [record],
        "draft": None,
        "tokens": tokens,
        "done": done,
        "trace_nodes": nodes,
        "trace_edges": edges,
    }


def finalize(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Extract the answer; when it disagrees with the chain's last computed value, resolve per policy."""
    from verifiers import answers_match, extract_answer

    ctx = _ctx(runtime)
    steps = state.get("steps") or []
    text = "".join(s["text"] for s in steps)
    policy = ctx.policy.final
    stated = extract_answer(text, strategies=tuple(policy.answer_strategies))
    chain = chain_value(steps)
    answer, resolution = stated, "stated"
    if stated is not None and chain is not None and not answers_match(stated, chain):
        if policy.on_mismatch == "prefer_chain":
            answer, resolution = chain, "chain preferred over stated answer"
        elif policy.on_mismatch == "flag":
            resolution = "flagged: stated answer differs from the chain's last computed value"
        else:
            resolution = "stated answer kept over the chain's last computed value"
    elif stated is None and chain is not None:
        answer, resolution = chain, "no stated answer; the chain's last computed value"
    final = {"answer": answer, "stated": stated, "chain_value": chain, "resolution": resolution}
    last = f"s{len(steps) - 1}" if steps else "q"
    node = {
        "id": "answer",
        "kind": "answer",
        "label": "answer",
        "text": answer or "",
        "confidence": None,
        "data": final,
    }
    _emit(ctx, "final", **final)
    return {
        "final": final,
        "done": True,
        "trace_nodes": [node],
        "trace_edges": [{"source": last, "target": "answer", "kind": "next", "label": ""}],
    }


def _context(state: SolveState) -> dict[str, Any]:
    return {"question": state.get("question", ""), "previous": [s["text"] for s in state.get("steps") or []]}


# ----------------------------------------------------------------- routing


def after_monitor(state: SolveState) -> Literal["verify", "resample", "escalate"]:
    decision = (state.get("draft") or {}).get("decision", "accept")
    if decision == "resample":
        return "resample"
    if decision == "escalate":
        return "escalate"
    return "verify"


def after_resample(state: SolveState) -> Literal["verify", "resample", "escalate"]:
    return after_monitor(state)


def after_verify(state: SolveState, runtime: Runtime[SolveContext]) -> Literal["repair", "accept"]:
    ctx = _ctx(runtime)
    draft = state.get("draft") or {}
    wrong = any(v["status"] == "wrong" for v in draft.get("verdicts", []))
    if not wrong or "wrong claim kept" in draft.get("flags", []):
        return "accept"
    if ctx.policy.repair.on_wrong == "flag" or int(state.get("repairs", 0)) < ctx.policy.repair.max_repairs_per_step:
        return "repair"
    return "accept"


def after_repair(state: SolveState, runtime: Runtime[SolveContext]) -> Literal["verify", "resample", "accept"]:
    draft = state.get("draft") or {}
    if (
        draft.get("decision") == "resample"
        and int(state.get("attempts", 0)) < _ctx(runtime).policy.resample.max_attempts
    ):
        return "resample"
    if draft.get("edited") and not draft.get("verdicts"):
        return "verify"
    return "accept"


def after_accept(state: SolveState) -> Literal["propose", "finalize"]:
    return "finalize" if state.get("done") else "propose"


def build_graph() -> StateGraph[SolveState, SolveContext, SolveState, SolveState]:
    """The solve graph, uncompiled (compile it with a checkpointer to make solves resumable)."""
    graph = StateGraph(SolveState, context_schema=SolveContext)
    for name, fn in (
        ("propose", propose),
        ("monitor", monitor),
        ("resample", resample),
        ("escalate", escalate),
        ("verify", verify),
        ("repair", repair),
        ("accept", accept),
        ("finalize", finalize),
    ):
        graph.add_node(name, fn)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "monitor")
    graph.add_conditional_edges("monitor", after_monitor)
    graph.add_conditional_edges("resample", after_resample)
    graph.add_edge("escalate", "verify")
    graph.add_conditional_edges("verify", after_verify)
    graph.add_conditional_edges("repair", after_repair)
    graph.add_conditional_edges("accept", after_accept)
    graph.add_edge("finalize", END)
    return graph
