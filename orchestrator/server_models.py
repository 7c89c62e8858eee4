"""The HTTP layer's request and response shapes, and the server's limits.

Requests are pydantic models with ``extra="forbid"`` and a description on every field (the OpenAPI
schema is generated from them). Limits depend on how the server was started, so they are checked by
:func:`check_limits` and :func:`cap_policy` rather than baked into the schema; a request over a limit
gets a 422 whose message names the limit, in FastAPI's own validation-error shape.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from orchestrator.errors import InputError
from policies import Policy

POLICY_NAME_RE = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"  # a name, never a path: no dots, no slashes
TRACE_ID_RE = r"^[A-Za-z0-9_-]{1,64}$"
MAX_SEED = 2**31 - 1

PolicyName = Annotated[str, StringConstraints(pattern=POLICY_NAME_RE)]


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; a named policy is capped to these, an explicit request over them is a 422."""

    max_question_chars: int = 4000  # characters of the question, after stripping
    max_check_chars: int = 4000  # characters of a step sent to /v1/check
    max_prompt_chars: int = 8000  # characters of an inline policy's template plus system message
    max_steps: int = 32  # steps.max_steps
    max_step_tokens: int = 256  # steps.max_step_tokens
    max_tokens: int = 1024  # steps.max_total_tokens
    max_candidates: int = 8  # resample.n_candidates
    max_attempts: int = 4  # resample.max_attempts
    default_deadline_s: float = 120.0  # deadline of a request that names none
    max_deadline_s: float = 600.0  # the longest deadline a request may ask for

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class LimitError(InputError):
    """A request over one of the server's limits (422); ``limit`` names it, ``loc`` is where in the body."""

    def __init__(
        self, message: str, *, limit: str, loc: tuple[str | int, ...], value: Any = None, kind: str = "limit_exceeded"
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.loc = loc
        self.value = value
        self.kind = kind

    def detail(self) -> list[dict[str, Any]]:
        """FastAPI's validation-error list, so every 422 has one shape."""
        ctx: dict[str, Any] = {"limit": self.limit}
        if isinstance(self.value, (int, float, str, bool)):
            ctx["value"] = self.value
        return [{"loc": ["body", *self.loc], "msg": str(self), "type": self.kind, "ctx": ctx}]


def _check_plain_data(value: Any, path: str) -> None:
    """Refuse what JSON allows but cannot be stored or sent back: lone surrogates, NaN, infinities."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: text is not valid Unicode (lone surrogate)") from None
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain_data(key, path)
            _check_plain_data(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_plain_data(item, f"{path}[{i}]")


class SolveRequest(BaseModel):
    """One question to solve step by step."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, description="The question; at most the server's max_question_chars.")
    policy: PolicyName | dict[str, Any] | None = Field(
        default=None,
        description="A policy name (see GET /v1/policies) or an inline policy object (the policy schema; "
        "'extends' may name a base policy). None uses the server's default policy.",
    )
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Random seed; None keeps the policy's.")
    max_steps: int | None = Field(default=None, ge=1, description="Most steps; at most the server's max_steps.")
    max_step_tokens: int | None = Field(
        default=None, ge=1, description="Most tokens per step; at most the server's max_step_tokens."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Most generated tokens in the solve; at most the server's max_tokens."
    )
    deadline_s: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Seconds from arrival after which the solve stops and the steps so far come back marked "
        "partial; at most the server's max_deadline_s.",
    )
    stream: bool = Field(
        default=False, description="Answer as server-sent events (also chosen by 'Accept: text/event-stream')."
    )

    @model_validator(mode="after")
    def _plain(self) -> SolveRequest:
        _check_plain_data(self.question, "question")
        _check_plain_data(self.policy, "policy")
        return self


class CheckRequest(BaseModel):
    """One step of reasoning to grade (a student's line, or a model's)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The step's text; at most the server's max_check_chars.")

    @model_validator(mode="after")
    def _plain(self) -> CheckRequest:
        _check_plain_data(self.text, "text")
        return self


class ErrorMessage(BaseModel):
    """An error other than a validation error."""

    detail: str = Field(description="What went wrong, for a person.")


class StepOut(BaseModel):
    """One accepted step."""

    model_config = ConfigDict(extra="allow")

    text: str = Field(description="The step's text (corrected when a correction fired).")
    origin: str = Field(description="greedy, resample, escalation or correction.")
    confidence: float | None = Field(description="Confidence score in [0, 1].")


class SolveResponse(BaseModel):
    """A solve's result; ``partial`` is true when the deadline stopped it early."""

    model_config = ConfigDict(extra="allow")

    request_id: str = Field(description="Unique per request; exactly one answer carries it.")
    trace_id: str = Field(description="Id of the stored trace: GET /v1/traces/{trace_id}.")
    partial: bool = Field(description="True when the deadline stopped the solve; steps are those done so far.")
    question: str
    answer: str | None = Field(description="The final answer, or null.")
    steps: list[StepOut]
    interventions: dict[str, int] = Field(description="Interventions fired, by kind.")
    policy: str = Field(description="Name of the policy that ran.")


class ClaimOut(BaseModel):
    """One arithmetic claim found in a step."""

    model_config = ConfigDict(extra="allow")

    expression: str
    stated: str
    status: str = Field(description="correct, wrong or unknown.")


class CheckResponse(BaseModel):
    """The verdict on one step: ``unknown`` means cannot judge, which is not ``wrong``."""

    status: str = Field(description="correct, wrong or unknown.")
    claims: list[ClaimOut]
    corrected_text: str | None = Field(description="The step with wrong results fixed, when something is wrong.")
    reason: str = Field(description="Why nothing could be judged, when unknown.")


class TraceRecord(BaseModel):
    """A stored trace."""

    model_config = ConfigDict(extra="allow")

    trace_id: str
    created: float = Field(description="Unix time the trace was stored.")
    question: str
    answer: str | None
    policy: str
    model: str
    partial: bool
    trace: dict[str, Any] = Field(description="The reasoning graph: nodes, edges, meta.")


class PolicyInfo(BaseModel):
    """A policy the server can run."""

    name: str
    description: str
    error: str | None = Field(default=None, description="Why the policy does not load, if it does not.")


class Health(BaseModel):
    """Liveness and load."""

    model_config = ConfigDict(extra="allow")

    status: str
    model: str
    quant: str
    queue_depth: int
    queue_size: int
    busy: bool
    workers: int
    running: int


# ----------------------------------------------------------------- limits


def check_limits(req: SolveRequest, limits: Limits) -> None:
    """Refuse a request asking for more than the server allows (LimitError names the limit)."""
    n = len(req.question.strip())
    if n == 0:
        raise LimitError("the question is empty", limit="question", loc=("question",))
    if n > limits.max_question_chars:
        raise LimitError(
            f"the question has {n} characters; the limit max_question_chars is {limits.max_question_chars}",
            limit="max_question_chars",
            loc=("question",),
            value=n,
        )
    for limit in ("max_steps", "max_step_tokens", "max_tokens"):  # request option and limit share the name
        value, allowed = getattr(req, limit), getattr(limits, limit)
        if value is not None and value > allowed:
            raise LimitError(
                f"{limit} {value} is over the server limit {limit} = {allowed}", limit=limit, loc=(limit,), value=value
            )
    if req.deadline_s is not None and req.deadline_s > limits.max_deadline_s:
        raise LimitError(
            f"deadline_s {req.deadline_s} is over the server limit max_deadline_s = {limits.max_deadline_s}",
            limit="max_deadline_s",
            loc=("deadline_s",),
            value=req.deadline_s,
        )


def check_inline_policy(data: dict[str, Any]) -> None:
    """Refuse inline-policy values that would read server files: ``extends`` paths and ``profile:`` layers."""
    base = data.get("extends")
    if base is not None and (not isinstance(base, str) or not re.match(POLICY_NAME_RE, base)):
        raise LimitError(
            "extends must name a policy (see GET /v1/policies), not a path", limit="extends", loc=("policy", "extends")
        )
    esc = data.get("escalation")
    if isinstance(esc, dict) and isinstance(esc.get("layers"), str) and esc["layers"].startswith("profile:"):
        raise LimitError(
            "escalation.layers may not name a profile file over HTTP",
            limit="escalation.layers",
            loc=("policy", "escalation", "layers"),
        )


def check_policy_limits(policy: Policy, data: dict[str, Any], limits: Limits) -> None:
    """Refuse an inline policy that explicitly asks for more than the limits (inherited values are capped)."""
    checks: list[tuple[tuple[str, str], int, str]] = [
        (("steps", "max_steps"), policy.steps.max_steps, "max_steps"),
        (("steps", "max_step_tokens"), policy.steps.max_step_tokens, "max_step_tokens"),
        (("steps", "max_total_tokens"), policy.steps.max_total_tokens, "max_tokens"),
        (("resample", "n_candidates"), policy.resample.n_candidates, "max_candidates"),
        (("resample", "max_attempts"), policy.resample.max_attempts, "max_attempts"),
    ]
    for loc, value, limit in checks:
        section = data.get(loc[0])
        allowed = getattr(limits, limit)
        if isinstance(section, dict) and loc[1] in section and value > allowed:
            raise LimitError(
                f"policy {'.'.join(loc)} {value} is over the server limit {limit} = {allowed}",
                limit=limit,
                loc=("policy", *loc),
                value=value,
            )
    prompt = len(policy.prompt.template) + len(policy.prompt.system or "")
    if prompt > limits.max_prompt_chars:
        raise LimitError(
            f"policy prompt has {prompt} characters; the limit max_prompt_chars is {limits.max_prompt_chars}",
            limit="max_prompt_chars",
            loc=("policy", "prompt"),
            value=prompt,
        )


def cap_policy(policy: Policy, limits: Limits) -> Policy:
    """A policy cut down to the server's limits (named policies, and values an inline policy inherits)."""
    total = min(policy.steps.max_total_tokens, limits.max_tokens)
    steps = policy.steps.model_copy(
        update={
            "max_steps": min(policy.steps.max_steps, limits.max_steps),
            "max_total_tokens": total,
            "max_step_tokens": min(policy.steps.max_step_tokens, limits.max_step_tokens, total),
        }
    )
    resample = policy.resample.model_copy(
        update={
            "n_candidates": min(policy.resample.n_candidates, limits.max_candidates),
            "max_attempts": min(policy.resample.max_attempts, limits.max_attempts),
        }
    )
    return policy.model_copy(update={"steps": steps, "resample": resample})


def apply_options(policy: Policy, req: SolveRequest) -> Policy:
    """The request's step and token options laid over the policy (validated again as a whole)."""
    update: dict[str, int] = {}
    if req.max_steps is not None:
        update["max_steps"] = req.max_steps
    if req.max_tokens is not None:
        update["max_total_tokens"] = req.max_tokens
        if req.max_step_tokens is None:
            update["max_step_tokens"] = min(policy.steps.max_step_tokens, req.max_tokens)
    if req.max_step_tokens is not None:
        update["max_step_tokens"] = req.max_step_tokens
    if not update:
        return policy
    steps = {**policy.steps.model_dump(), **update}
    if steps["max_step_tokens"] > steps["max_total_tokens"]:
        raise LimitError(
            f"max_step_tokens ({steps['max_step_tokens']}) must not exceed max_tokens ({steps['max_total_tokens']})",
            limit="max_step_tokens",
            loc=("max_step_tokens",),
            value=steps["max_step_tokens"],
        )
    return policy.model_copy(update={"steps": policy.steps.model_copy(update=update)})
