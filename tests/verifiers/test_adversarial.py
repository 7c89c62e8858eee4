"""Hostile input: every case gets an exact verdict or "cannot judge", fast, never a crash."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from verifiers import check_step, evaluate
from verifiers.errors import ExpressionError

BUDGET_S = 0.1  # the acceptance bound per input

ADVERSARIAL = {
    "power tower": "9**9**9**9 = 1",
    "power tower, LaTeX": "10^10^10 = 5",
    "5000-digit number": "1" * 5000 + " + 1 = 2",
    "10,000 nested parentheses": "(" * 10_000 + "1" + ")" * 10_000 + " = 1",
    "2,400 nested parentheses (under the length cap)": "(" * 2_400 + "1" + ")" * 2_400 + " = 1",
    "4,900-digit number (under the length cap)": "1" * 4_900 + " + 1 = 2",
    "nested \\frac": "\\frac{" * 450 + "1" + "}{2}" * 450 + " = 1",
    "1e308 * 1e308": "1e308 * 1e308 = 1e616",
    "Unicode digits": "١٢ + ٣ = ١٥ and ２ + ３ = ５",
    "python code": "__import__('os').system('rm -rf /') = 0",
    "1 MB of text": ("She walked 12 x 4 = 48 miles. " * 40_000)[: 1 << 20],
    "long chain": " = ".join(["1 + 1"] * 600),
    "long chain of numbers": " = ".join(["2"] * 1200),
    "many operators": "1" + " + 1" * 1200 + " = 1201",
    "many claims": "1 + 1 = 2, " * 450,
    "many sentences": "1 + 1 = 2. " * 5000,
    "lone operators": "+-*/^" * 950 + "=",
    "braces only": "{" * 2400 + "=" + "}" * 2400,
    "NUL and control characters": "1\x00+\x01 1 = \x02 2",
    "surrogate-free emoji": "🍎 + 🍎 = 2 🍎; 3 🍎 + 4 = 7",
}


def best_of_three(fn: Callable[[], object]) -> float:
    """The fastest of three runs, so a busy machine (a preemption) does not fail a bound meant for hangs."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_input_is_answered_quickly(name: str) -> None:
    text = ADVERSARIAL[name]
    assert check_step(text).status in ("correct", "wrong", "unknown")
    best = best_of_three(lambda: check_step(text))
    assert best < BUDGET_S, f"{name}: {best * 1000:.1f} ms"


def test_exact_verdicts_where_possible() -> None:
    assert check_step("1e308 * 1e308 = 1e616").status == "correct"
    assert check_step("1e308 * 1e308 = 1e617").status == "wrong"
    assert check_step("9**9**9**9 = 1").status == "unknown"
    assert "exponent" in check_step("9**9**9**9 = 1").reason


@pytest.mark.parametrize("text", ["9**9**9**9", "10^10^10", "2^(2^(2^(2^(2^2))))", "(((" * 30 + "1", "1e999999"])
def test_parser_refuses_fast(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(text)

    def refused() -> None:
        with pytest.raises(ExpressionError):
            evaluate(text)

    assert best_of_three(refused) < BUDGET_S


PIECES = [
    *"0123456789",
    "1,000",
    "3.5",
    "$",
    "\\$",
    "%",
    " ",
    " ",
    "+",
    "-",
    "*",
    "**",
    "/",
    "^",
    "×",
    "÷",
    "=",
    "≈",
    "(",
    ")",
    "{",
    "}",
    "\\frac{",
    "\\times",
    "\\left(",
    "\\right)",
    "\\text{ eggs}",
    "\\(",
    "\\)",
    "\\[",
    "x",
    " x ",
    " is ",
    " of ",
    "1 1/2",
    "\\sqrt",
    "²",
    "٣",
    "½",
    ".",
    ",",
    "\\",
    "9**9**9",
    "and",
    "cents",
    "dozen",
]


def test_fuzz_sample_never_crashes() -> None:
    rng = random.Random(1234)
    slowest, slowest_text = 0.0, ""
    for _ in range(1500):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 120)))
        start = time.perf_counter()
        verdict = check_step(text)
        if time.perf_counter() - start > slowest:
            slowest, slowest_text = time.perf_counter() - start, text
        assert verdict.status in ("correct", "wrong", "unknown")
        for c in verdict.claims:
            assert 0 <= c.span[0] <= c.span[1] <= len(text)
            assert 0 <= c.result_span[0] <= c.result_span[1] <= len(text)
        if verdict.status == "wrong":
            assert verdict.corrected_text is not None
    assert best_of_three(lambda: check_step(slowest_text)) < BUDGET_S  # the slowest input, timed again
