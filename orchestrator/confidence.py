"""Confidence monitors: how sure the model was of a step, weighted to the tokens that carry its claims.

A quantized model's slips sit on digits and operators far more than on filler words, so tokens are
classified into key classes (numbers, operators, connectives, step markers) and those weigh more.
:func:`score_step` turns a :class:`~orchestrator.steps.Step` into a :class:`StepConfidence`;
:func:`decide` maps the score to accept / resample / escalate; :func:`adaptive_temperature_hook`
samples cooler on key tokens. Pure Python: no torch, no backend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from orchestrator.errors import InputError
from orchestrator.steps import Step, TemperatureHook

TokenClass = Literal["number", "operator", "connective", "step_marker", "other"]
Decision = Literal["accept", "resample", "escalate"]
KEY_CLASSES: tuple[TokenClass, ...] = ("number", "operator", "connective", "step_marker")

OPERATOR_CHARS = frozenset("+-−–*×·⋅∙/÷=≈≠<>≤≥^%±√")
NON_OPERATORS = frozenset({"**", "***", "--", "---", "----", "->", "=>"})  # markdown and arrows
LATEX_OPERATORS = frozenset(
    {"times", "frac", "dfrac", "tfrac", "cdot", "div", "sqrt", "pm", "mp", "le", "leq", "ge", "geq",
     "neq", "ne", "approx", "equiv", "sum", "prod", "lt", "gt"}
)  # fmt: skip
WORD_OPERATORS = frozenset(
    {"times", "plus", "minus", "divided", "multiplied", "multiply", "add", "added", "subtract",
     "subtracted", "equals", "equal", "per", "percent", "frac", "cdot", "sqrt"}
)  # fmt: skip
NUMBER_WORDS = frozenset(
    {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
     "twelve", "thirteen", "fifteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
     "ninety", "hundred", "thousand", "million", "billion", "half", "twice", "double", "triple",
     "dozen", "quarter", "third", "thirds"}
)  # fmt: skip
CONNECTIVES = frozenset(
    {"so", "therefore", "thus", "hence", "because", "since", "then", "total", "altogether",
     "overall", "consequently", "∴", "remaining", "left", "together", "combined", "result"}
)  # fmt: skip
STEP_WORDS = frozenset(
    {"step", "first", "firstly", "second", "secondly", "next", "finally", "lastly",
     "•", "#", "##", "###", "####"}
)  # fmt: skip
# "third" and "second" are both; ordinals at the start of a step matter less than as fractions, but we
# cannot tell from one piece: "second" stays a step marker, "third" a number (a third of ...).

_NUMBER_RE = re.compile(r"^[$€£]?[+\-−]?(?:\d[\d,]*)?(?:\.\d+|\d)(?:st|nd|rd|th|k|m)?%?$|^[½⅓⅔¼¾⅕⅛]$")
_STEP_NUMBER_RE = re.compile(r"^\d{1,3}[.)]$")
_PUNCT = "()[]{},;:!?\"'`"


def classify_token(piece: str) -> TokenClass:
    """The key-token class of one decoded piece, without context.

    Pieces may carry leading spaces ("Ġ" already decoded) or be partial words; LaTeX commands count as
    operators, with or without their backslash (BPE often splits ``\\times`` into ``\\`` and ``times``).
    A lone ``-`` is an operator here; :func:`classify_tokens` makes it a step marker at a line start.

    >>> [classify_token(p) for p in [" 12", "×", "\\\\frac", " Therefore", "Step", " apples"]]
    ['number', 'operator', 'operator', 'connective', 'step_marker', 'other']
    """
    core = piece.replace("▁", " ").replace("Ġ", " ").strip()
    if not core:
        return "other"
    if _STEP_NUMBER_RE.match(core):
        return "step_marker"
    stripped = core.strip(_PUNCT) or core
    if stripped.startswith("\\"):
        name = stripped[1:].rstrip(_PUNCT + "{")
        if name in LATEX_OPERATORS or (name and set(name) <= OPERATOR_CHARS):
            return "operator"
        return "other"
    if _NUMBER_RE.match(stripped) or (stripped.rstrip(".").isdigit()):
        return "number"
    if set(stripped) <= OPERATOR_CHARS and stripped not in NON_OPERATORS:
        return "operator"
    word = stripped.rstrip(".").lower()
    if word in WORD_OPERATORS:
        return "operator"
    if word in CONNECTIVES:
        return "connective"
    if word in STEP_WORDS:
        return "step_marker"
    if word in NUMBER_WORDS:
        return "number"
    if any(c.isdigit() for c in stripped) and all(c.isdigit() or c in ".,/%$:" for c in stripped):
        return "number"  # "3/4", "1,000.50", "12:30"
    return "other"


def classify_tokens(pieces: Sequence[str]) -> list[TokenClass]:
    """Classes of a step's pieces, using their line context.

    At a line start, a bullet (``-``, ``*``, ``•``) and an item number (``1.``, ``2)``, also split as
    ``1`` + ``.``) are step markers rather than an operator and a number.

    >>> classify_tokens(["1", ".", " Buy", " 3", " +", " 4"])
    ['step_marker', 'step_marker', 'other', 'number', 'operator', 'number']
    """
    classes = [classify_token(p) for p in pieces]
    at_line_start = True
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        if at_line_start and piece.strip():
            core = piece.strip()
            if core in {"-", "*", "•"} or _STEP_NUMBER_RE.match(core):
                classes[i] = "step_marker"
            elif core.isdigit() and len(core) <= 3:
                j = i
                while j + 1 < len(pieces) and pieces[j + 1].isdigit() and len(pieces[j + 1]) <= 3:
                    j += 1
                nxt = pieces[j + 1] if j + 1 < len(pieces) else ""
                after = pieces[j + 2] if j + 2 < len(pieces) else ""
                decimal = nxt == "." and after[:1].isdigit()
                if nxt.strip() in {".", ")"} and not decimal:
                    for k in range(i, j + 2):
                        classes[k] = "step_marker"
                    i = j + 2
                    at_line_start = False
                    continue
        elif classes[i] == "step_marker" and _STEP_NUMBER_RE.match(piece.strip()):
            classes[i] = "number"  # "12." ending a sentence, not an item number
        if "\n" in piece:
            at_line_start = not piece.rsplit("\n", 1)[1].strip()
        elif piece.strip():
            at_line_start = False
        i += 1
    return classes


class ClassWeightsLike(Protocol):
    """Per-class multipliers of ``key_weight`` (the policy's ``confidence.class_weights``)."""

    number: float
    operator: float
    connective: float
    step_marker: float


class ConfidenceSettings(Protocol):
    """What the monitor reads from a policy's ``confidence`` section (a pydantic model satisfies it)."""

    enabled: bool
    signal: Literal["entropy", "top1", "margin", "combined"]
    key_weight: float
    min_weight: float
    accept_threshold: float
    escalate_threshold: float

    @property
    def class_weights(self) -> ClassWeightsLike: ...


@dataclass(frozen=True)
class WeakToken:
    """One token of a step and how sure the model was of it."""

    index: int  # position in the step
    token: str  # decoded piece
    cls: TokenClass
    confidence: float  # per-token confidence under the policy's signal, in [0, 1]
    top1_prob: float


@dataclass
class StepConfidence:
    """A step's confidence score and the statistics behind it (plain data, for the trace)."""

    score: float  # in [0, 1]; see score_step for the formula
    signal: str
    n_tokens: int
    weighted_mean: float  # M in the formula
    weighted_min: float  # m in the formula
    mean_top1: float
    min_top1: float
    mean_entropy: float
    max_entropy: float
    min_margin: float
    key_min_top1: float | None  # lowest top-1 probability over key tokens; None without key tokens
    weakest: WeakToken | None  # the token that set the weighted minimum
    weakest_key: WeakToken | None  # the least confident key token
    counts: dict[str, int] = field(default_factory=dict)  # tokens per class

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def token_confidences(step: Step, signal: str) -> list[float]:
    """Per-token confidence in [0, 1] under ``signal``.

    top1: probability of the token written, ``exp(logprob)`` (the top-1 probability when greedy, lower
    when sampling chose a less likely token); entropy: ``exp(-H)``, the inverse perplexity of the
    next-token distribution (1 when certain, 1/k for k equally likely tokens); margin: top-1 minus top-2
    probability; combined: the mean of the three.
    """
    n = len(step.tokens)
    for name in ("logprobs", "entropies", "margins", "top1_probs"):
        if len(getattr(step, name)) != n:
            raise InputError(f"step.{name} has {len(getattr(step, name))} values for {n} tokens")
    chosen = [_unit(math.exp(min(lp, 0.0))) if not math.isnan(lp) else 0.0 for lp in step.logprobs]
    if signal == "top1":
        return chosen
    sure = [_unit(math.exp(-max(h, 0.0))) if not math.isnan(h) else 0.0 for h in step.entropies]
    if signal == "entropy":
        return sure
    margins = [_unit(m) for m in step.margins]
    if signal == "margin":
        return margins
    if signal == "combined":
        return [(a + b + c) / 3.0 for a, b, c in zip(chosen, sure, margins, strict=True)]
    raise InputError(f"unknown confidence signal {signal!r}")


def token_weights(classes: Sequence[TokenClass], config: ConfidenceSettings) -> list[float]:
    """Weight of each token: 1 for "other", ``key_weight × class_weights[class]`` for a key token."""
    return [1.0 if c == "other" else config.key_weight * getattr(config.class_weights, c) for c in classes]


def score_step(step: Step, config: ConfidenceSettings) -> StepConfidence:
    """Score a step in [0, 1], weighted to its key tokens.

    With per-token confidence ``c_i`` (see :func:`token_confidences`) and weight ``w_i`` (1 for other
    tokens, ``key_weight × class_weight`` for key tokens, see :func:`token_weights`),
    ``W = key_weight × max(class weights, 1/key_weight)`` the largest weight the policy can give::

        M     = Σ w_i c_i / Σ w_i                   weighted mean
        m     = min_i (1 − (w_i / W)(1 − c_i))      weighted minimum: a token's doubt counts in
                                                    proportion to its weight, a key token's in full
        score = (1 − α) M + α m                     α = config.min_weight

    So one unsure digit (top-1 0.4, c ≈ 0.30) among 20 sure tokens gives M ≈ 0.91, m ≈ 0.30 and, with
    α = 0.7, a score ≈ 0.49 (re-sample at the default 0.6), while the same doubt on a filler word gives
    m ≈ 0.83 and a score ≈ 0.86 (accept): a plain mean (≈ 0.91 vs 0.96) would accept both. The score is
    monotone in every token's probabilities. A step without tokens scores 1.0: there is no evidence of doubt, and
    whether an empty step is acceptable is the generator's and the graph's question, not the monitor's.
    """
    n = len(step.tokens)
    conf = token_confidences(step, config.signal)
    classes = classify_tokens(step.tokens)
    counts: dict[str, int] = {c: 0 for c in (*KEY_CLASSES, "other")}
    for c in classes:
        counts[c] += 1
    if n == 0:
        return StepConfidence(
            score=1.0, signal=config.signal, n_tokens=0, weighted_mean=1.0, weighted_min=1.0,
            mean_top1=1.0, min_top1=1.0, mean_entropy=0.0, max_entropy=0.0, min_margin=1.0,
            key_min_top1=None, weakest=None, weakest_key=None, counts=counts,
        )  # fmt: skip
    weights = token_weights(classes, config)
    cw = config.class_weights
    top_weight = config.key_weight * max(cw.number, cw.operator, cw.connective, cw.step_marker)
    top_weight = max(top_weight, 1.0)
    total = sum(weights)
    mean = sum(w * c for w, c in zip(weights, conf, strict=True)) / total if total > 0 else 1.0
    penalised = [1.0 - (w / top_weight) * (1.0 - c) for w, c in zip(weights, conf, strict=True)]
    low = min(range(n), key=penalised.__getitem__)
    wmin = penalised[low]
    alpha = config.min_weight
    score = _unit((1.0 - alpha) * mean + alpha * wmin)
    top1 = [_unit(p) for p in step.top1_probs]

    def weak(i: int) -> WeakToken:
        return WeakToken(i, step.tokens[i], classes[i], conf[i], top1[i])

    key_idx = [i for i, c in enumerate(classes) if c != "other"]
    weakest_key = weak(min(key_idx, key=conf.__getitem__)) if key_idx else None
    return StepConfidence(
        score=score,
        signal=config.signal,
        n_tokens=n,
        weighted_mean=mean,
        weighted_min=wmin,
        mean_top1=sum(top1) / n,
        min_top1=min(top1),
        mean_entropy=sum(step.entropies) / n,
        max_entropy=max(step.entropies),
        min_margin=min(step.margins),
        key_min_top1=min(top1[i] for i in key_idx) if key_idx else None,
        weakest=weak(low),
        weakest_key=weakest_key,
        counts=counts,
    )


def decide(
    conf: StepConfidence,
    config: ConfidenceSettings,
    *,
    can_resample: bool = True,
    can_escalate: bool = True,
    escalate_immediately: bool = True,
) -> Decision:
    """What to do with a scored step.

    ``score >= accept_threshold`` (or monitoring disabled) → accept; ``score < escalate_threshold`` →
    escalate when ``escalate_immediately`` (the policy's ``escalation.when == "immediately"``); otherwise
    resample. A missing remedy falls through to the other one, and with neither left the step is
    accepted. ``can_resample`` / ``can_escalate`` carry the policy's switches and the remaining budget.

    >>> c = StepConfidence(0.5, "top1", 3, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.5, None, None, None)
    >>> from policies import ConfidenceConfig
    >>> decide(c, ConfidenceConfig(accept_threshold=0.6, escalate_threshold=0.3))
    'resample'
    """
    if not config.enabled or conf.score >= config.accept_threshold:
        return "accept"
    if can_escalate and (not can_resample or (escalate_immediately and conf.score < config.escalate_threshold)):
        return "escalate"
    return "resample" if can_resample else "accept"


def adaptive_temperature_hook(
    piece_of: Callable[[int], str],
    key_temperature: float,
    other_temperature: float,
    key_classes: Sequence[TokenClass] = KEY_CLASSES,
) -> TemperatureHook:
    """A per-token temperature: ``key_temperature`` where the greedy next token is a key token.

    ``piece_of`` decodes one token id (e.g. ``lambda i: tokenizer.decode([i])``); pieces are classified
    once per id and cached.

    >>> hook = adaptive_temperature_hook({1: " 7", 2: " apples"}.__getitem__, 0.1, 0.9)
    >>> hook([], 1), hook([], 2)
    (0.1, 0.9)
    """
    keys = frozenset(key_classes)
    cache: dict[int, bool] = {}

    def hook(step_token_ids: Sequence[int], greedy_next: int) -> float:
        is_key = cache.get(greedy_next)
        if is_key is None:
            is_key = cache[greedy_next] = classify_token(piece_of(greedy_next)) in keys
        return key_temperature if is_key else other_temperature

    return hook


def _unit(x: float) -> float:
    """Clamp to [0, 1], NaN to 0."""
    return 0.0 if math.isnan(x) else min(1.0, max(0.0, x))
