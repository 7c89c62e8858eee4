"""Confidence monitors: key-token classes, the weighted step score, decisions, adaptive temperature."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.confidence import (
    StepConfidence,
    classify_token,
    classify_tokens,
    decide,
    score_step,
    token_confidences,
)
from orchestrator.confidence import adaptive_temperature_hook as make_hook
from orchestrator.errors import InputError
from orchestrator.steps import Step
from policies import ConfidenceConfig, Policy, load_policy

CFG = ConfidenceConfig()

# "She buys 3 apples at $2 each, so 3 \times 2 = 6." as a Qwen-like tokenizer splits it (digits alone)
PIECES = [" She", " buys", " ", "3", " apples", " at", " $", "2", " each", ",", " so", " ", "3", " \\",
          "times", " ", "2", " =", " ", "6", "."]  # fmt: skip
SIX = PIECES.index("6")
APPLES = PIECES.index(" apples")


def make_step(pieces: list[str], probs: list[float]) -> Step:
    """A step whose signals all follow from each token's top-1 probability (two-way distributions)."""

    def entropy(p: float) -> float:
        return 0.0 if p >= 1.0 else -(p * math.log(p) + (1 - p) * math.log(1 - p))

    return Step(
        text="".join(pieces),
        token_ids=list(range(len(pieces))),
        tokens=list(pieces),
        logprobs=[math.log(p) for p in probs],
        entropies=[entropy(p) for p in probs],
        margins=[max(0.0, 2 * p - 1) for p in probs],
        top1_probs=list(probs),
    )


def unsure_at(index: int | None, p: float = 0.4) -> Step:
    probs = [0.99] * len(PIECES)
    if index is not None:
        probs[index] = p
    return make_step(PIECES, probs)


@pytest.mark.parametrize(
    ("piece", "cls"),
    [
        (" 12", "number"),  # leading space from the BPE piece
        ("7", "number"),  # a lone digit (Qwen splits numbers into digits)
        ("3.5", "number"),
        (" 1,000", "number"),
        ("50%", "number"),
        ("$12", "number"),
        ("½", "number"),
        (" twice", "number"),  # word problems state quantities in words
        (" +", "operator"),
        ("=", "operator"),
        ("×", "operator"),
        ("÷", "operator"),
        ("-", "operator"),  # without context a dash is a minus (classify_tokens knows bullets)
        ("\\times", "operator"),  # LaTeX operator
        ("\\frac", "operator"),
        ("\\frac{", "operator"),
        ("times", "operator"),  # LaTeX split as "\\" + "times", or the word in prose
        (" divided", "operator"),
        ("**", "other"),  # markdown bold, not a power
        ("\\[", "other"),  # display-math delimiter
        ("\\", "other"),  # the backslash half of a split command
        (" so", "connective"),
        (" Therefore", "connective"),
        (" thus", "connective"),
        (" because", "connective"),
        (" total", "connective"),
        ("Step", "step_marker"),
        (" First", "step_marker"),
        (" Finally", "step_marker"),
        ("1.", "step_marker"),  # an item number as one piece
        ("###", "step_marker"),  # markdown heading
        (" apples", "other"),
        ("ing", "other"),  # a word fragment
        ("", "other"),
        ("  ", "other"),
        ("\n", "other"),
        (",", "other"),
        ("x", "other"),  # a variable is not a number
    ],
)
def test_classify_token(piece: str, cls: str) -> None:
    assert classify_token(piece) == cls


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        # an item number split as "1" + "." at the start of the step
        (["1", ".", " Add"], ["step_marker", "step_marker", "operator"]),
        # a two-digit item number after a newline
        (["x", "\n", "1", "2", ")", " y"], ["other", "other", "step_marker", "step_marker", "step_marker", "other"]),
        # a decimal at line start stays a number
        (["3", ".", "5", " kg"], ["number", "other", "number", "other"]),
        # a bullet dash at line start, a minus elsewhere
        (["-", " 5", " -", " 2"], ["step_marker", "number", "operator", "number"]),
        (["a", "\n", "-", " b"], ["other", "other", "step_marker", "other"]),
        # "12." ending a sentence is a number, not an item number
        (["is", " 12."], ["other", "number"]),
        # "12." at line start is an item number
        (["12.", " Then"], ["step_marker", "connective"]),
    ],
)
def test_classify_tokens_uses_line_context(pieces: list[str], expected: list[str]) -> None:
    assert classify_tokens(pieces) == expected


def test_example_step_classes() -> None:
    classes = dict(zip(PIECES, classify_tokens(PIECES), strict=True))
    assert classes["6"] == "number" and classes["times"] == "operator" and classes[" so"] == "connective"


def test_unsure_number_scores_lower_than_unsure_filler() -> None:
    number = score_step(unsure_at(SIX), CFG)
    filler = score_step(unsure_at(APPLES), CFG)
    sure = score_step(unsure_at(None), CFG)
    assert number.score < filler.score < sure.score
    assert number.weakest is not None and number.weakest.index == SIX and number.weakest.cls == "number"
    assert number.weakest_key is not None and number.weakest_key.token == "6"
    assert number.key_min_top1 == pytest.approx(0.4)
    # with the default thresholds the unsure digit is re-sampled and the unsure filler accepted
    assert decide(number, CFG) == "resample"
    assert decide(filler, CFG) == "accept"


def test_one_weak_digit_drags_a_long_step_down() -> None:
    # the same doubt on one digit among 200 confident tokens still costs most of the score
    pieces = [" word"] * 200 + [" 7"]
    probs = [0.99] * 200 + [0.2]
    conf = score_step(make_step(pieces, probs), CFG)
    assert conf.score < CFG.accept_threshold
    assert conf.weighted_mean > 0.95  # a plain mean would have accepted it


@pytest.mark.parametrize("signal", ["entropy", "top1", "margin", "combined"])
def test_every_signal_ranks_number_doubt_below_filler_doubt(signal: str) -> None:
    cfg = ConfidenceConfig(signal=signal)  # type: ignore[arg-type]
    assert score_step(unsure_at(SIX), cfg).score < score_step(unsure_at(APPLES), cfg).score


def test_key_weight_one_treats_all_tokens_alike() -> None:
    cfg = ConfidenceConfig(
        key_weight=1.0, class_weights={"number": 1, "operator": 1, "connective": 1, "step_marker": 1}
    )  # type: ignore[arg-type]
    assert score_step(unsure_at(SIX), cfg).score == pytest.approx(score_step(unsure_at(APPLES), cfg).score)


def test_zero_class_weight_ignores_the_class() -> None:
    cfg = ConfidenceConfig(class_weights={"number": 0.0})  # type: ignore[arg-type]
    assert score_step(unsure_at(SIX), cfg).score == pytest.approx(score_step(unsure_at(None), cfg).score)


def test_stats_and_counts() -> None:
    conf = score_step(unsure_at(SIX), CFG)
    assert conf.n_tokens == len(PIECES)
    assert conf.min_top1 == pytest.approx(0.4)
    assert conf.mean_top1 == pytest.approx((0.99 * (len(PIECES) - 1) + 0.4) / len(PIECES))
    assert conf.max_entropy == pytest.approx(-(0.4 * math.log(0.4) + 0.6 * math.log(0.6)))
    assert conf.min_margin == 0.0
    assert conf.counts == {"number": 5, "operator": 2, "connective": 1, "step_marker": 0, "other": 13}
    assert conf.to_dict()["weakest"]["token"] == "6"  # type: ignore[index]


def test_empty_step_scores_one() -> None:
    # no tokens, no evidence of doubt: whether an empty step is acceptable is the graph's question
    conf = score_step(make_step([], []), CFG)
    assert conf.score == 1.0 and conf.n_tokens == 0 and conf.weakest is None
    assert decide(conf, CFG) == "accept"


def test_mismatched_signal_lengths_are_rejected() -> None:
    step = make_step(["a", "b"], [0.9, 0.9])
    step.entropies = [0.1]
    with pytest.raises(InputError, match="entropies"):
        score_step(step, CFG)


def test_nan_signals_count_as_no_confidence() -> None:
    step = make_step(["7"], [0.9])
    step.logprobs = [float("nan")]
    assert token_confidences(step, "top1") == [0.0]


def test_sampled_token_below_top1_counts_its_own_probability() -> None:
    # sampling picked a 0.1-probability token although the top-1 had 0.9: the top1 signal sees 0.1
    step = make_step(["7"], [0.9])
    step.logprobs = [math.log(0.1)]
    assert token_confidences(step, "top1") == [pytest.approx(0.1)]


unit = st.floats(min_value=0.0, max_value=1.0)
token_signals = st.tuples(st.floats(min_value=0.01, max_value=1.0), st.floats(min_value=0.0, max_value=8.0), unit)


def step_from_signals(signals: list[tuple[float, float, float]]) -> Step:
    """A step with independent per-token (probability, entropy, margin)."""
    pieces = PIECES[: len(signals)]
    return Step(
        text="".join(pieces),
        token_ids=list(range(len(pieces))),
        tokens=pieces,
        logprobs=[math.log(p) for p, _, _ in signals],
        entropies=[h for _, h, _ in signals],
        margins=[m for _, _, m in signals],
        top1_probs=[p for p, _, _ in signals],
    )


@given(
    signals=st.lists(token_signals, min_size=1, max_size=len(PIECES)),
    index=st.integers(min_value=0),
    which=st.sampled_from(["prob", "entropy", "margin"]),
    bump=unit,
    signal=st.sampled_from(["entropy", "top1", "margin", "combined"]),
)
def test_score_is_monotone_in_each_signal(
    signals: list[tuple[float, float, float]], index: int, which: str, bump: float, signal: str
) -> None:
    # making any one token surer (higher probability or margin, lower entropy) never lowers the score
    cfg = ConfidenceConfig(signal=signal)  # type: ignore[arg-type]
    i = index % len(signals)
    p, h, m = signals[i]
    surer = list(signals)
    if which == "prob":
        surer[i] = (p + bump * (1.0 - p), h, m)
    elif which == "entropy":
        surer[i] = (p, h * (1.0 - bump), m)
    else:
        surer[i] = (p, h, m + bump * (1.0 - m))
    low = score_step(step_from_signals(signals), cfg).score
    high = score_step(step_from_signals(surer), cfg).score
    assert 0.0 <= low <= high + 1e-12 <= 1.0 + 1e-12


@given(signals=st.lists(token_signals, min_size=1, max_size=len(PIECES)))
def test_score_mixes_weighted_mean_and_weighted_min(signals: list[tuple[float, float, float]]) -> None:
    conf = score_step(step_from_signals(signals), CFG)
    expected = (1 - CFG.min_weight) * conf.weighted_mean + CFG.min_weight * conf.weighted_min
    assert conf.score == pytest.approx(expected)
    assert conf.weakest is not None and 0.0 <= conf.weighted_min <= 1.0


def conf_with(score: float) -> StepConfidence:
    return StepConfidence(score, "combined", 3, score, score, score, score, 0.0, 0.0, score, None, None, None)


@pytest.mark.parametrize(
    ("score", "kwargs", "expected"),
    [
        (0.9, {}, "accept"),  # above accept_threshold (0.6)
        (0.6, {}, "accept"),  # at the threshold: accept
        (0.59, {}, "resample"),  # between the thresholds
        (0.3, {}, "resample"),  # at escalate_threshold: not below it
        (0.29, {}, "escalate"),  # below escalate_threshold, escalating directly
        (0.1, {"escalate_immediately": False}, "resample"),  # policy escalates only after re-sampling
        (0.1, {"can_escalate": False}, "resample"),  # escalation off or its budget spent
        (0.5, {"can_resample": False}, "escalate"),  # no re-sampling: escalate anything doubtful
        (0.5, {"can_resample": False, "can_escalate": False}, "accept"),  # nothing left to try
    ],
)
def test_decide_thresholds(score: float, kwargs: dict, expected: str) -> None:
    assert decide(conf_with(score), CFG, **kwargs) == expected


def test_decide_accepts_everything_when_monitoring_is_off() -> None:
    assert decide(conf_with(0.0), Policy.plain().confidence) == "accept"


PIECE_OF = {0: " 7", 1: "+", 2: " apples", 3: "\\times", 4: " so", 5: "ing", 6: "\n", 7: "4"}


@pytest.mark.parametrize(
    ("token_id", "expected"),
    [
        (0, 0.1),  # a digit: key temperature
        (7, 0.1),  # a bare digit
        (1, 0.1),  # an operator
        (3, 0.1),  # a LaTeX operator
        (4, 0.1),  # a connective is a key token too
        (2, 0.9),  # a filler word
        (5, 0.9),  # a word fragment
        (6, 0.9),  # a newline
    ],
)
def test_temperature_hook(token_id: int, expected: float) -> None:
    hook = make_hook(PIECE_OF.__getitem__, key_temperature=0.1, other_temperature=0.9)
    assert hook([0, 1], token_id) == expected


def test_temperature_hook_key_classes_and_cache() -> None:
    calls: list[int] = []

    def piece_of(i: int) -> str:
        calls.append(i)
        return PIECE_OF[i]

    hook = make_hook(piece_of, 0.0, 1.0, key_classes=["number"])
    assert [hook([], 0), hook([], 1), hook([], 0)] == [0.0, 1.0, 0.0]  # operators not key here
    assert calls == [0, 1]  # each id decoded once


def test_policy_sections_satisfy_the_protocol() -> None:
    for name in ["arithmetic", "word_problems", "algebra", "tutoring", "default"]:
        policy = load_policy(name)
        assert 0.0 <= score_step(unsure_at(SIX), policy.confidence).score <= 1.0
