"""The nodes of the solve graph: each reads the draft from state, calls the step stream or the verifiers
from the runtime context, and returns plain data (accepted steps, counters, trace nodes and edges)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from orchestrator.drafts import (
    bump,
    candidate_node,
    ctx_of,
    decide_draft,
    draft_record,
    emit,
    sampling_for,
    step_index,
    sync_stream,
    verifier_context,
)
from orchestrator.state import SolveContext, SolveState
from orchestrator.verdicts import (
    best_candidate,
    checked_values,
    resolve_answer,
    run_verifiers,
    stated_answer,
    verdict_rank,
)


def propose(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Draft the next step (greedy by default), continuing the cached prefix."""
    ctx = ctx_of(runtime)
    sync_stream(ctx, state)
    step = ctx.stream.propose(1, sampling_for(ctx, state, resample=False))[0]
    draft = draft_record(ctx, step, "greedy", ctx.stream.proposal_id, 0)
    return {
        "draft": draft,
        "attempts": 0,
        "repairs": 0,
        "tokens_spent": int(state.get("tokens_spent", 0)) + len(step.token_ids),
    }


def monitor(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Decide from the draft's confidence: accept as is, re-sample, or escalate."""
    ctx = ctx_of(runtime)
    draft = dict(state["draft"] or {})
    decision = decide_draft(ctx, state, draft)
    draft["decision"] = decision
    emit(ctx, "monitor", step=step_index(state), confidence=draft["confidence"], decision=decision)
    return {"draft": draft}


def resample(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Draw N candidates in one batched call; keep the best by verdict, then confidence."""
    ctx = ctx_of(runtime)
    old = dict(state["draft"] or {})
    n = ctx.policy.resample.n_candidates
    sync_stream(ctx, state)
    steps = ctx.stream.propose(n, sampling_for(ctx, state, resample=True))
    pid = ctx.stream.proposal_id
    attempt = int(state.get("attempts", 0)) + 1
    pool = [old] + [draft_record(ctx, s, "resample", pid, i, attempt) for i, s in enumerate(steps)]
    for rec in pool:
        if not rec["verdicts"]:
            rec["verdicts"] = verdicts_of(ctx, state, rec)
    repairable = ctx.policy.repair.on_wrong == "correct"
    best = best_candidate(pool, repairable=repairable)
    nodes = (
        [candidate_node(state, r, "lower rank") for r in pool if r is not best]
        if ctx.policy.trace.keep_candidates
        else []
    )
    best = dict(best)
    attempts = int(state.get("attempts", 0)) + 1
    if verdict_rank(best, repairable=repairable) >= 1.5:
        best["decision"] = "accept"  # verified, or wrong in a way the repair fixes: no need to look further
    else:
        best["decision"] = decide_draft(ctx, {**state, "attempts": attempts}, best)
    emit(
        ctx,
        "resample",
        step=step_index(state),
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
        "counts": bump(state, "resample"),
        "tokens_spent": int(state.get("tokens_spent", 0)) + spent,
        "trace_nodes": nodes,
        "trace_edges": [
            {"source": nd["id"], "target": f"s{step_index(state)}", "kind": "candidate", "label": "rejected"}
            for nd in nodes
        ],
    }


def escalate(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Redo the step with high-precision copies of the policy's layers swapped in, then restore.

    ``regenerate`` writes the step afresh; ``verify`` scores the draft in one forward and keeps it
    up to the first token where the escalated model's greedy choice differs, regenerating only the rest.
    """
    ctx = ctx_of(runtime)
    old = dict(state["draft"] or {})
    layers = ctx.escalation_layers
    mode = ctx.policy.escalation.mode
    greedy = replace(sampling_for(ctx, state, resample=False), temperature=0.0, temperature_hook=None)
    sync_stream(ctx, state)
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
        new = draft_record(ctx, step, "escalation", ctx.stream.proposal_id, 0)
        generated = len(step.token_ids) - kept_tokens
    new["verdicts"] = verdicts_of(ctx, state, new)
    if old.get("verdicts") is None or not old.get("verdicts"):
        old["verdicts"] = verdicts_of(ctx, state, old)
    # Keep the escalated draft unless the old one is strictly better verified.
    fix = ctx.policy.repair.on_wrong == "correct"
    chosen = old if verdict_rank(old, repairable=fix) > verdict_rank(new, repairable=fix) else new
    chosen = dict(chosen)
    chosen["decision"] = "accept"
    k = step_index(state)
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
    emit(
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
        "counts": bump(state, "escalate"),
        "tokens_spent": int(state.get("tokens_spent", 0)) + generated,
        "trace_nodes": [node],
        "trace_edges": [{"source": esc_id, "target": f"s{k}", "kind": "escalation", "label": "escalation"}],
    }


def verdicts_of(ctx: SolveContext, state: SolveState, draft: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The policy's verifiers on a draft; one cut at a token limit leaves its last word unjudged."""
    cut = draft.get("stop_reason") == "max_tokens"
    return run_verifiers(ctx.verifiers, draft["text"], verifier_context(state), cut=cut)


def verify(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Run the policy's verifiers on the draft (three-valued: only "wrong" triggers repair)."""
    ctx = ctx_of(runtime)
    draft = dict(state["draft"] or {})
    draft["verdicts"] = verdicts_of(ctx, state, draft)
    statuses = [v["status"] for v in draft["verdicts"]]
    emit(ctx, "verify", step=step_index(state), statuses=statuses)
    return {"draft": draft}


def repair(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Handle a wrong claim per policy: correct it in place, re-sample, or flag it and go on."""
    ctx = ctx_of(runtime)
    draft = dict(state["draft"] or {})
    how = ctx.policy.repair.on_wrong
    k = step_index(state)
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
        emit(ctx, "correct", step=k, before=draft["text"], after=corrected)
        draft.update(text=corrected, edited=True, origin="correction", verdicts=[])
        draft.setdefault("corrected_from", node["data"]["before"])
        update.update(
            draft=draft,
            counts=bump(state, "correct"),
            trace_nodes=[node],
            trace_edges=[{"source": cid, "target": f"s{k}", "kind": "correction", "label": "fixed"}],
        )
    elif how == "resample" and ctx.policy.resample.enabled:
        draft["decision"] = "resample"
        emit(ctx, "repair_resample", step=k)
        update.update(draft=draft, counts=bump(state, "repair_resample"))
    else:
        draft["flags"] = [*draft.get("flags", []), "wrong claim kept"]
        emit(ctx, "flag", step=k, text=draft["text"])
        update.update(draft=draft, counts=bump(state, "flag"))
    return update


def accept(state: SolveState, runtime: Runtime[SolveContext]) -> dict[str, Any]:
    """Append the draft to the accepted prefix (cache extended) and record it in the trace."""
    ctx = ctx_of(runtime)
    draft = dict(state["draft"] or {})
    stream = ctx.stream
    sync_stream(ctx, state)
    fresh = draft["proposal"] == stream.proposal_id
    if draft["edited"]:
        stream.accept_text(draft["text"], draft["cand"] if fresh else None)
    elif fresh:
        stream.accept(draft["cand"])
    else:  # the draft came from an earlier proposal (kept over re-sampled ones), or the solve was resumed
        stream.accept_text(draft["text"], None)
    k = step_index(state)
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
    emit(
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
    ctx = ctx_of(runtime)
    steps = state.get("steps") or []
    text = "".join(s["text"] for s in steps)
    policy = ctx.policy.final
    stated, explicit = stated_answer(text, policy.answer_strategies)
    values = checked_values(steps)
    chain = values[-1][0] if values else None
    answer, resolution = resolve_answer(stated, values, policy.on_mismatch, explicit=explicit)
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
    emit(ctx, "final", **final)
    return {
        "final": final,
        "done": True,
        "trace_nodes": [node],
        "trace_edges": [{"source": last, "target": "answer", "kind": "next", "label": ""}],
    }
