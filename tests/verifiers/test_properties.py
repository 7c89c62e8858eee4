"""Property tests with an exact ``Fraction`` oracle: correct claims pass, perturbed ones
fail, and the way a claim is written (plain, Unicode, LaTeX, delimiters, $) does not
change the verdict."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from verifiers import check_step
from verifiers.numbers import format_decimal

OPS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class Tree:
    op: str  # "" for a leaf
    value: int = 0
    left: Tree | None = None
    right: Tree | None = None

    def exact(self) -> Fraction:
        if not self.op:
            return Fraction(self.value)
        assert self.left is not None and self.right is not None
        a, b = self.left.exact(), self.right.exact()
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else Fraction(0)}[self.op]

    def has_zero_division(self) -> bool:
        if not self.op:
            return False
        assert self.left is not None and self.right is not None
        return (
            self.left.has_zero_division()
            or self.right.has_zero_division()
            or (self.op == "/" and self.right.exact() == 0)
        )


def leaves() -> st.SearchStrategy[Tree]:
    return st.integers(min_value=0, max_value=999).map(lambda v: Tree("", v))


trees = st.recursive(
    leaves(),
    lambda sub: st.builds(Tree, st.sampled_from(OPS), st.just(0), sub, sub),
    max_leaves=6,
)

STYLES = ("plain", "unicode", "latex", "latex_display", "words_money")


def render(tree: Tree, style: str) -> str:
    """Write the tree fully parenthesised, in one of several notations."""
    if not tree.op:
        if style == "words_money":
            return f"${tree.value}"
        return str(tree.value)
    assert tree.left is not None and tree.right is not None
    a, b = render(tree.left, style), render(tree.right, style)
    if style in ("latex", "latex_display"):
        if tree.op == "/":
            return f"\\frac{{{a}}}{{{b}}}"
        op = {"+": "+", "-": "-", "*": "\\times"}[tree.op]
        return f"\\left({a} {op} {b}\\right)"
    if style == "unicode":
        op = {"+": "+", "-": "−", "*": "×", "/": "÷"}[tree.op]
        return f"({a} {op} {b})"
    return f"({a} {tree.op} {b})"


def claim(tree: Tree, stated: str, style: str) -> str:
    expr = render(tree, style)
    if style == "latex":
        return f"So the total is \\( {expr} = {stated} \\)."
    if style == "latex_display":
        return f"\\[ {expr} = {stated} \\text{{ apples}} \\]"
    if style == "words_money":
        return f"She paid {expr} = ${stated} in total." if not stated.startswith("-") else f"It is {expr} = {stated}."
    return f"She has {expr} = {stated} apples."


def written(value: Fraction) -> str:
    """The exact value as a person would write it: an integer, or a decimal rounded to 2 places."""
    return format_decimal(value)


@settings(max_examples=300, deadline=None)
@given(trees, st.sampled_from(STYLES))
def test_correct_claims_pass(tree: Tree, style: str) -> None:
    if not tree.op or tree.has_zero_division():
        return
    stated = written(tree.exact())
    verdict = check_step(claim(tree, stated, style))
    assert verdict.status == "correct", (claim(tree, stated, style), verdict)


@settings(max_examples=300, deadline=None)
@given(trees, st.sampled_from(STYLES), st.sampled_from(("+1", "-1", "x10", "+0.1")))
def test_perturbed_claims_fail(tree: Tree, style: str, how: str) -> None:
    if not tree.op or tree.has_zero_division():
        return
    exact = tree.exact()
    bad = {"+1": exact + 1, "-1": exact - 1, "x10": exact * 10, "+0.1": exact + Fraction(1, 10)}[how]
    if bad == exact or abs(bad - exact) < Fraction(1, 50):
        return
    text = claim(tree, written(bad), style)
    verdict = check_step(text)
    assert verdict.status == "wrong", (text, verdict)
    (wrong,) = [c for c in verdict.claims if c.status == "wrong"]
    assert wrong.computed_value is not None and Fraction(wrong.computed_value) == exact
    assert verdict.corrected_text is not None
    assert check_step(verdict.corrected_text).status == "correct"


@settings(max_examples=200, deadline=None)
@given(trees, st.integers(min_value=-3, max_value=3))
def test_formatting_does_not_change_the_verdict(tree: Tree, offset: int) -> None:
    if not tree.op or tree.has_zero_division():
        return
    stated = written(tree.exact() + offset)
    statuses = {style: check_step(claim(tree, stated, style)).status for style in STYLES}
    assert len(set(statuses.values())) == 1, statuses


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**6))
def test_thousands_separators_and_currency(a: int, b: int) -> None:
    total = a + b
    plain = f"{a} + {b} = {total}"
    grouped = f"${a:,} + ${b:,} = ${total:,}"
    latex = f"\\( \\${a:,} + \\${b:,} = \\${total:,} \\)".replace(",", "{,}")
    assert {check_step(t).status for t in (plain, grouped, latex)} == {"correct"}


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=999), st.integers(min_value=1, max_value=999), st.integers(0, 3))
def test_rounded_decimals_round_as_written(p: int, q: int, places: int) -> None:
    exact = Fraction(p, q)
    scaled = exact * 10**places
    down = Fraction(int(scaled), 10**places)  # truncated
    up = down + Fraction(1, 10**places)
    nearest = down if exact - down < up - exact else up
    far = nearest + (Fraction(1, 10**places) if nearest == down else -Fraction(1, 10**places))
    eq = "≈" if places == 0 else "="  # an integer after "=" must be exact; after "≈" it may be rounded
    text = f"{p} / {q} {eq} {format_decimal(nearest, places)}"
    assert check_step(text).status == "correct", text
    if abs(far - exact) * 2 * 10**places > 1:  # clearly not a rounding of the value
        bad = f"{p} / {q} {eq} {format_decimal(far, places)}"
        assert check_step(bad).status == "wrong", bad
