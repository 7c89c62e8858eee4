"""The graph's state and runtime context.

State is plain, serialisable data (it goes through the checkpointer); lists that grow have
``operator.add`` reducers. The model, the verifiers and the policy travel in the runtime
context, never in state.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from orchestrator.stream import StepStream
from policies import Policy

Event = dict[str, Any]
EventCallback = Callable[[Event], None]


class SolveState(TypedDict, total=False):
    """Everything a solve knows between nodes (plain data only)."""

    question: str
    prompt_ids: list[int]
    steps: Annotated[list[dict[str, Any]], operator.add]  # accepted step records, in order
    draft: dict[str, Any] | None  # the step under consideration
    attempts: int  # re-sampling rounds spent on the current step
    repairs: int  # repairs spent on the current step
    escalations: int  # escalations in this solve
    tokens: int  # tokens of accepted steps
    tokens_spent: int  # every generated token, rejected candidates included
    counts: dict[str, int]  # interventions fired, by kind
    trace_nodes: Annotated[list[dict[str, Any]], operator.add]
    trace_edges: Annotated[list[dict[str, Any]], operator.add]
    done: bool
    final: dict[str, Any]  # answer, stated, chain value, resolution


@dataclass
class SolveContext:
    """Run-scoped objects the nodes use: the step stream, the policy, verifiers and callbacks."""

    stream: StepStream
    policy: Policy
    verifiers: list[tuple[str, Callable[..., Any]]]
    escalation_layers: list[int] = field(default_factory=list)
    on_event: EventCallback | None = None
    seed: int | None = None
