"""Final-answer extraction (per strategy) and equivalence."""

from __future__ import annotations

import time

import pytest

from orchestrator.errors import InputError
from verifiers import answers_match, extract_answer

EXTRACT = [
    # (text, strategies, expected)
    ("So 5 + 3 = 8. The answer is 8.", None, "8"),
    ("The final answer is $1,200.", None, "1,200"),
    ("Answer: 42", None, "42"),
    (r"Thus the total is \(\boxed{18}\).", None, "18"),
    (r"\boxed{\frac{3}{4}} and later \boxed{\dfrac{1}{2}}", None, r"\dfrac{1}{2}"),  # the last box
    (r"\boxed{\{1, 2\}}", None, r"\{1, 2\}"),  # balanced braces
    ("Natalia sold 72 clips.\n#### 72", None, "72"),
    ("She has 3 apples and 4 pears, 7 in all", None, "7"),  # last number as fallback
    ("No numbers here.", None, None),
    # a policy's own order: hashes before boxed
    (r"\boxed{5}" + "\n#### 6", ("hashes", "boxed"), "6"),
    (r"\boxed{5}" + "\n#### 6", ("boxed", "hashes"), "5"),
    ("The answer is 3 but 4 apples", ("answer_is",), "3"),
    ("Only 4 apples", ("boxed", "answer_is", "hashes"), None),  # no fallback asked for
]


@pytest.mark.parametrize(("text", "strategies", "expected"), EXTRACT)
def test_extract_answer(text: str, strategies: tuple[str, ...] | None, expected: str | None) -> None:
    found = extract_answer(text) if strategies is None else extract_answer(text, strategies=strategies)
    assert found == expected


def test_unknown_strategy_lists_known_ones() -> None:
    with pytest.raises(InputError, match="boxed"):
        extract_answer("1", strategies=("magic",))


MATCH = [
    ("72", "72", True),
    ("$1,200.00", "1200", True),  # currency, separator, trailing zeros
    ("1{,}200", "1200", True),
    ("0.75", "3/4", True),
    (r"\frac{3}{4}", "0.75", True),
    (r"\dfrac{6}{8}", r"\frac{3}{4}", True),
    ("25%", "25", True),  # GSM8K writes percentages as numbers
    ("25\\%", "0.25", True),
    ("1 1/2", "1.5", True),
    (r"\text{18 eggs}", "18", False),  # the number sits inside \text: not read as 18
    ("18 eggs", "18", True),
    ("7", "8", False),
    ("0.333", "1/3", False),  # an answer must be exact
    ("-3", "3", False),
    (r"\boxed{12}", "12", True),
    (r"\(12\)", "12", True),
    (r"\sqrt{2}/2", r"\frac{1}{\sqrt{2}}", True),  # symbolic: Math-Verify
]


@pytest.mark.parametrize(("predicted", "gold", "expected"), MATCH)
def test_answers_match(predicted: str, gold: str, expected: bool) -> None:
    assert answers_match(predicted, gold) is expected


@pytest.mark.parametrize(("predicted", "gold"), [(None, "1"), ("", "1"), ("1", None)])
def test_missing_answer_cannot_be_judged(predicted: str | None, gold: str | None) -> None:
    assert answers_match(predicted, gold) is None


@pytest.mark.parametrize(
    "predicted",
    ["9^{9^{9}}", "9**9**9**9", "(" * 200 + "1" + ")" * 200, "x" * 5000, "1" * 5000, "100!"],
)
def test_hostile_answers_are_bounded(predicted: str) -> None:
    start = time.perf_counter()
    result = answers_match(predicted, "1")
    assert result in (None, False)
    assert time.perf_counter() - start < 2.5  # Math-Verify is only given small inputs, and a deadline
