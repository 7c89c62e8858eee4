"""The LangGraph state graph that drives a solve, one step at a time.

::

    propose ─► monitor ──accept──► verify ──pass──► accept ──more──► propose
                  │ low              ▲  │ wrong          │ done
                  ▼                  │  ▼                ▼
               resample ─(still low)─► escalate       finalize ─► END
                  ▲                  │  repair ──► verify / accept / resample
                  └──────────────────┘

The nodes live in :mod:`orchestrator.nodes`. Each reads the draft step from state, calls the
step stream or the verifiers from the runtime context, and writes plain data back: the accepted
steps, counters of interventions and the nodes and edges of the reasoning trace. Routing
functions return ``Literal`` names, so the drawn graph is exact.
"""

from __future__ import annotations

from typing import Literal

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from orchestrator.drafts import ctx_of
from orchestrator.nodes import accept, escalate, finalize, monitor, propose, repair, resample, verify
from orchestrator.state import SolveContext, SolveState

NODE_NAMES = ("propose", "monitor", "resample", "escalate", "verify", "repair", "accept", "finalize")


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
    ctx = ctx_of(runtime)
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
        and int(state.get("attempts", 0)) < ctx_of(runtime).policy.resample.max_attempts
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
