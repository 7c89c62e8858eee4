"""The Policy schema: what a solve may do at each step, per domain.

Pure configuration: pydantic models with ``extra="forbid"`` and a description on every field, no I/O
(reading YAML files lives in :mod:`policies.loading`). ``Policy()`` is the ``default`` policy;
``Policy.plain()`` turns every intervention off, for comparing the orchestrated loop with plain generation.

>>> Policy().resample.n_candidates
4
>>> Policy.plain().confidence.enabled
False
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Boundary = Literal["newline", "blank_line", "numbered_item"]
Signal = Literal["entropy", "top1", "margin", "combined"]
AnswerStrategy = Literal["boxed", "answer_is", "hashes", "last_number"]

DEFAULT_ANSWER_STRATEGIES: tuple[AnswerStrategy, ...] = ("boxed", "answer_is", "hashes", "last_number")
DEFAULT_TEMPLATE = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
ONE_STEP_PER_LINE_INSTRUCTION = "Write each step on a single line."

LAYER_SPEC_RE = re.compile(r"^(?:all|(?P<kind>middle|deep):(?P<fraction>\d*\.?\d+)|profile:(?P<path>\S.*))$")
"""String form of ``escalation.layers``: ``all``, ``middle:F``, ``deep:F`` (0 < F <= 1), ``profile:PATH``."""

VERIFIER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PromptConfig(_Section):
    """How the question becomes the user turn."""

    system: str | None = Field(default=None, description="System message; None sends none.")
    template: str = Field(
        default=DEFAULT_TEMPLATE,
        description="User turn; '{question}' is replaced by the question (other braces are kept as written).",
    )
    one_step_per_line: bool = Field(
        default=False, description="Append an instruction asking the model to write one step per line."
    )

    @field_validator("template")
    @classmethod
    def _has_question(cls, value: str) -> str:
        if "{question}" not in value:
            raise ValueError("template must contain '{question}'")
        return value

    def render(self, question: str) -> str:
        """The user turn for ``question`` (plain replacement, so LaTeX braces need no escaping).

        >>> PromptConfig(template="Q: {question} \\\\boxed{}").render("1+1?")
        'Q: 1+1? \\\\boxed{}'
        """
        text = self.template.replace("{question}", question)
        return f"{text}\n{ONE_STEP_PER_LINE_INSTRUCTION}" if self.one_step_per_line else text


class StepsConfig(_Section):
    """What a step is and how long a solve may run."""

    boundary: Boundary = Field(
        default="newline",
        description="What ends a step: a newline, a blank line, or the start of the next numbered item.",
    )
    stop_strings: list[str] = Field(
        default_factory=list, description="Strings that end the whole answer when generated."
    )
    max_steps: int = Field(default=24, ge=1, le=1000, description="Most steps in one solve.")
    max_step_tokens: int = Field(default=160, ge=1, description="Most tokens in one step.")
    max_total_tokens: int = Field(default=1024, ge=1, description="Most generated tokens in one solve.")

    @model_validator(mode="after")
    def _step_fits_total(self) -> StepsConfig:
        if self.max_step_tokens > self.max_total_tokens:
            raise ValueError(
                f"max_step_tokens ({self.max_step_tokens}) must not exceed max_total_tokens ({self.max_total_tokens})"
            )
        return self


class SamplingConfig(_Section):
    """How the first draft of each step is decoded."""

    temperature: float = Field(default=0.0, ge=0.0, le=5.0, description="Sampling temperature; 0 = greedy.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus mass kept when sampling.")
    seed: int | None = Field(default=0, description="Random seed; None draws a fresh one per solve.")


class AdaptiveTemperatureConfig(_Section):
    """Cooler sampling on key tokens (numbers, operators, ...), warmer elsewhere, whenever sampling."""

    enabled: bool = Field(default=False, description="Use per-token temperatures while sampling (not when greedy).")
    key_temperature: float = Field(default=0.2, ge=0.0, le=5.0, description="Temperature on key tokens; 0 = greedy.")
    other_temperature: float = Field(default=0.8, ge=0.0, le=5.0, description="Temperature on all other tokens.")


class ClassWeights(_Section):
    """Multipliers of ``key_weight`` per key-token class; 0 ignores the class in the score."""

    number: float = Field(default=1.0, ge=0.0, le=10.0, description="Digits and numerals.")
    operator: float = Field(default=1.0, ge=0.0, le=10.0, description="Arithmetic and relation symbols, LaTeX ops.")
    connective: float = Field(default=0.5, ge=0.0, le=10.0, description="so, therefore, thus, because, total, ...")
    step_marker: float = Field(default=0.25, ge=0.0, le=10.0, description="'1.', 'Step', 'First', bullets.")


class ConfidenceConfig(_Section):
    """How a step's token signals become one score in [0, 1], and what each score range triggers."""

    enabled: bool = Field(default=True, description="Score steps; when off every step is accepted unscored.")
    signal: Signal = Field(
        default="combined",
        description="Per-token confidence: top1 (chosen token's probability), entropy (exp(-H)), "
        "margin (top-1 minus top-2 probability) or combined (their mean).",
    )
    key_weight: float = Field(default=4.0, ge=1.0, le=100.0, description="Weight of a key token relative to others.")
    class_weights: ClassWeights = Field(
        default_factory=ClassWeights, description="Per-class multipliers of key_weight."
    )
    min_weight: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Share of the weighted minimum in the score (0 = weighted mean only, 1 = weakest token).",
    )
    accept_threshold: float = Field(default=0.6, ge=0.0, le=1.0, description="Score at or above which a step passes.")
    escalate_threshold: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Score below which a step escalates directly (when escalation.when is 'immediately').",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ConfidenceConfig:
        if self.escalate_threshold > self.accept_threshold:
            raise ValueError(
                f"escalate_threshold ({self.escalate_threshold}) must not exceed "
                f"accept_threshold ({self.accept_threshold})"
            )
        return self


class ResampleConfig(_Section):
    """Re-drawing a doubtful step as N candidates in one batched call."""

    enabled: bool = Field(default=True, description="Re-sample steps scored below accept_threshold.")
    n_candidates: int = Field(default=4, ge=1, le=32, description="Candidates drawn per attempt.")
    max_attempts: int = Field(default=2, ge=1, le=16, description="Re-sampling rounds per step before giving up.")
    temperature: float = Field(default=0.7, gt=0.0, le=5.0, description="Sampling temperature of candidates.")
    top_p: float = Field(default=0.95, gt=0.0, le=1.0, description="Nucleus mass of candidates.")


class EscalationConfig(_Section):
    """Re-doing a step with high-precision copies of chosen decoder layers swapped in."""

    enabled: bool = Field(default=True, description="Allow escalation to high-precision layers.")
    mode: Literal["regenerate", "verify"] = Field(
        default="regenerate",
        description="regenerate the step, or verify the draft in one forward and keep it up to the first "
        "token the escalated model disagrees with.",
    )
    layers: list[int] | str = Field(
        default="middle:0.25",
        description="Layer indices, or 'all', 'middle:F', 'deep:F' (fraction 0 < F <= 1), 'profile:PATH'.",
    )
    profile_layers: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="How many layers a 'profile:PATH' spec takes: the ones whose restoration helps most.",
    )
    when: Literal["after_resample", "immediately"] = Field(
        default="after_resample",
        description="Escalate once re-sampling failed, or directly when a score is below escalate_threshold.",
    )
    max_per_solve: int = Field(default=4, ge=0, le=1000, description="Most escalations in one solve.")

    @field_validator("layers", mode="before")
    @classmethod
    def _check_layers(cls, value: object) -> object:
        if isinstance(value, str):
            match = LAYER_SPEC_RE.match(value)
            if match is None:
                raise ValueError(
                    f"invalid layer spec {value!r}: expected a list of layer indices, 'all', "
                    "'middle:F', 'deep:F' or 'profile:PATH'"
                )
            fraction = match.group("fraction")
            if fraction is not None and not 0.0 < float(fraction) <= 1.0:
                raise ValueError(f"layer fraction in {value!r} must be in (0, 1]")
            return value
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError("layer list must not be empty")
            if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value):
                raise ValueError("layer indices must be non-negative integers")
            if len(set(value)) != len(value):
                raise ValueError("layer indices must not repeat")
            return list(value)
        raise ValueError("expected a list of layer indices or a layer spec string")


class RepairConfig(_Section):
    """What to do with a claim a verifier judged wrong ("cannot judge" never triggers repair)."""

    on_wrong: Literal["correct", "resample", "flag"] = Field(
        default="correct",
        description="correct the claim in place, resample the step, or only flag it in the trace.",
    )
    max_repairs_per_step: int = Field(default=2, ge=0, le=100, description="Most repairs of one step.")


class FinalConfig(_Section):
    """How the final answer is read from the chain."""

    answer_strategies: list[AnswerStrategy] = Field(
        default_factory=lambda: list(DEFAULT_ANSWER_STRATEGIES),
        min_length=1,
        description="Extractors tried in order: \\boxed{}, 'the answer is', '#### N', last number.",
    )
    on_mismatch: Literal["prefer_supported", "prefer_chain", "prefer_stated", "flag"] = Field(
        default="flag",
        description="When the stated answer disagrees with the chain's last checked result: keep it if the text "
        "states it (boxed, 'the answer is', '####') and a checked step computed it, else take the chain's "
        "(prefer_supported); always take the chain's (prefer_chain, which also overrides a right answer followed "
        "by a side computation or a check); keep the stated one; or keep it and flag the disagreement.",
    )

    @field_validator("answer_strategies")
    @classmethod
    def _unique(cls, value: list[AnswerStrategy]) -> list[AnswerStrategy]:
        if len(set(value)) != len(value):
            raise ValueError("answer strategies must not repeat")
        return value


class TraceConfig(_Section):
    """What the reasoning graph keeps."""

    keep_all_verdicts: bool = Field(
        default=False, description="Keep every verifier verdict, passes included (for explanation)."
    )
    keep_candidates: bool = Field(default=True, description="Keep rejected candidates and escalation drafts.")


class Policy(_Section):
    """Everything a solve may do, for one domain. ``Policy()`` is the ``default`` policy."""

    name: str = Field(default="default", min_length=1, description="Policy name, shown in traces.")
    description: str = Field(
        default="Balanced defaults: score every step, re-sample doubtful ones, escalate what stays doubtful, "
        "check arithmetic and correct wrong claims.",
        description="One line on what the policy is for.",
    )
    prompt: PromptConfig = Field(default_factory=PromptConfig, description="Prompt construction.")
    steps: StepsConfig = Field(default_factory=StepsConfig, description="Step boundaries and budgets.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="Decoding of first drafts.")
    adaptive_temperature: AdaptiveTemperatureConfig = Field(
        default_factory=AdaptiveTemperatureConfig, description="Per-token temperature while sampling."
    )
    confidence: ConfidenceConfig = Field(default_factory=ConfidenceConfig, description="Confidence monitor.")
    resample: ResampleConfig = Field(default_factory=ResampleConfig, description="Re-sampling doubtful steps.")
    escalation: EscalationConfig = Field(
        default_factory=EscalationConfig, description="High-precision layer escalation."
    )
    verifiers: list[str] = Field(
        default_factory=lambda: ["arithmetic"],
        description="Verifier names, run in order (checked against the verifier registry at solve time).",
    )
    repair: RepairConfig = Field(default_factory=RepairConfig, description="Handling of wrong claims.")
    final: FinalConfig = Field(default_factory=FinalConfig, description="Final-answer extraction.")
    trace: TraceConfig = Field(default_factory=TraceConfig, description="What the trace keeps.")
    recursion_limit: int = Field(
        default=400, ge=10, le=100_000, description="LangGraph recursion bound (node visits per solve)."
    )

    @field_validator("verifiers")
    @classmethod
    def _verifier_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not VERIFIER_NAME_RE.match(name):
                raise ValueError(f"invalid verifier name {name!r}")
        if len(set(value)) != len(value):
            raise ValueError("verifier names must not repeat")
        return value

    @classmethod
    def plain(cls) -> Policy:
        """Every intervention off: the orchestrated loop doing what plain generation does.

        Greedy, no scoring, re-sampling, escalation, verifiers or adaptive temperature.
        """
        return cls(
            name="plain",
            description="Every intervention off: the step loop reproduces plain greedy generation.",
            adaptive_temperature=AdaptiveTemperatureConfig(enabled=False),
            confidence=ConfidenceConfig(enabled=False),
            resample=ResampleConfig(enabled=False),
            escalation=EscalationConfig(enabled=False, max_per_solve=0),
            verifiers=[],
            repair=RepairConfig(on_wrong="flag", max_repairs_per_step=0),
            final=FinalConfig(on_mismatch="prefer_stated"),
            trace=TraceConfig(keep_all_verdicts=False, keep_candidates=False),
        )


def slice_layers(kind: str, fraction: float, num_layers: int) -> list[int]:
    """The layers ``KIND:F`` names: ``ceil(F * num_layers)`` of them (at least 1), the first ones
    (``shallow``), the last ones (``deep``) or centred on the middle (``middle``).

    >>> slice_layers("middle", 0.25, 26), slice_layers("deep", 0.01, 24)
    ([9, 10, 11, 12, 13, 14, 15], [23])
    """
    count = min(num_layers, max(1, math.ceil(fraction * num_layers - 1e-9)))
    start = {"shallow": 0, "deep": num_layers - count, "middle": (num_layers - count) // 2}[kind]
    return list(range(start, start + count))


def resolve_layers(spec: list[int] | str, num_layers: int) -> list[int]:
    """Layer indices named by ``escalation.layers`` for a model with ``num_layers`` decoder layers.

    ``middle:F`` is the ``ceil(F * num_layers)`` layers centred on the middle, ``deep:F`` the last
    ones. ``profile:PATH`` needs a file read, so it is the caller's to resolve: ValueError here.

    >>> resolve_layers("middle:0.25", 24)
    [9, 10, 11, 12, 13, 14]
    >>> resolve_layers("deep:0.25", 8)
    [6, 7]
    """
    if num_layers < 1:
        raise ValueError("num_layers must be at least 1")
    if isinstance(spec, list):
        bad = [i for i in spec if i >= num_layers]
        if bad:
            raise ValueError(f"layer indices {bad} out of range for {num_layers} layers")
        return sorted(spec)
    match = LAYER_SPEC_RE.match(spec)
    if match is None:
        raise ValueError(f"invalid layer spec {spec!r}")
    if spec == "all":
        return list(range(num_layers))
    if match.group("path") is not None:
        raise ValueError(f"layer spec {spec!r} names a profile file; resolve it where files are read")
    return slice_layers(match.group("kind"), float(match.group("fraction")), num_layers)
