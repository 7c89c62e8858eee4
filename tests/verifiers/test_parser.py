"""The safe expression parser: exact values, LaTeX, caps."""

from __future__ import annotations

from fractions import Fraction

import pytest

from verifiers import ExpressionError, LimitExceededError, evaluate, parse_expression

CASES = [
    ("12 x 4".replace(" x ", " * "), Fraction(48)),  # plain
    ("16 - 3 - 4", Fraction(9)),  # left-associative minus
    ("2 ** 3 ** 2", Fraction(512)),  # right-associative power
    ("-2^2", Fraction(-4)),  # unary minus binds looser than ^
    ("(1 + 2) * 3", Fraction(9)),
    ("2(3 + 4)", Fraction(14)),  # implicit multiplication before a parenthesis
    ("1,000.5 * 2", Fraction(2001)),  # thousands separator
    ("1{,}000 + 1", Fraction(1001)),  # LaTeX thousands separator
    ("25% * 80", Fraction(20)),
    ("25\\% * 80", Fraction(20)),
    ("$12 / 60", Fraction(1, 5)),
    ("\\$12 \\div 60", Fraction(1, 5)),
    ("€3 · 4", Fraction(12)),
    ("7 × 6 ÷ 3 − 1", Fraction(13)),
    ("1 1/2 + 1/2", Fraction(2)),  # mixed number
    ("3\\frac{1}{2}", Fraction(7, 2)),  # LaTeX mixed number
    ("\\frac{3}{4} + \\dfrac{1}{4}", Fraction(1)),
    ("\\left(3 + 1\\right) \\times 2", Fraction(8)),
    ("2^{10}", Fraction(1024)),
    (".5 + 0.25", Fraction(3, 4)),
    ("1e3 + 1", Fraction(1001)),
    ("5²", Fraction(25)),  # superscript
    ("½ + ¼", Fraction(3, 4)),  # vulgar fractions
    ("560 // 10", Fraction(56)),  # floor division
    ("10 / 3", Fraction(10, 3)),  # exact, not a float
    ("0.1 + 0.2", Fraction(3, 10)),  # exact, not 0.30000000000000004
]


@pytest.mark.parametrize(("text", "value"), CASES)
def test_evaluates_exactly(text: str, value: Fraction) -> None:
    assert evaluate(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "9**9**9**9",  # power tower: refused before computing
        "10^10^10",
        "2 ^ 100000",
        "1" * 5000,  # digits per number
        "(" * 100 + "1" + ")" * 100,  # nesting depth
        "1" + " + 1" * 1500,  # expression length
        "1e5000",  # scientific exponent
    ],
)
def test_caps_raise_limit_exceeded(text: str) -> None:
    with pytest.raises(LimitExceededError):
        evaluate(text)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "1 +",
        "()",
        "x + 1",
        "\\sqrt{4}",
        "2 ^ 0.5",  # non-integer exponent: no exact rational
        "1 / 0",
        "١٢ + 3",  # Unicode digits are not read as numbers
        "",
    ],
)
def test_rejects_what_it_cannot_evaluate(text: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(text)


def test_to_sympy_is_exact() -> None:
    import sympy  # type: ignore[import-untyped]

    expr = parse_expression("\\frac{1}{3} + 1/6 * 2^{2}")
    value = expr.to_sympy()
    assert value == sympy.Rational(1, 1)
    assert isinstance(value, sympy.Rational)
    assert parse_expression("2^{-2}").to_sympy() == sympy.Rational(1, 4)


def test_to_sympy_respects_caps() -> None:
    with pytest.raises(LimitExceededError):
        parse_expression("9^9^9").to_sympy()


def test_1e308_squared_is_exact() -> None:
    assert evaluate("1e308 * 1e308") == Fraction(10) ** 616
