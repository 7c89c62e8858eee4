"""The arithmetic step checker: judge every ``expression = result`` claim in a step exactly.

Reading a chain ``S0 = S1 = S2`` as people mean it, link by link:

- ``S1`` is a number: the claim is ``S0 = S1`` (rounding as written is accepted).
- ``S1`` is an expression equal to ``S0``: a rewriting (``2 × (4 + 7) = 2 × 11``), correct.
- ``S1`` starts with the value of ``S0`` (``2 + 3 = 5 + 4 = 9``): a running computation, the
  claim is ``S0 = 5`` and the next link checks ``5 + 4 = 9``.
- otherwise wrong: a wrong rewriting when the first number of ``S1`` occurs in ``S0`` or ``S1``
  restates ``S0`` with one part miscomputed (the same operation, one operand the same, the other a
  computation on the left: ``0.75 × 75 × 3 = 375 × 3``); else a running computation
  (``2 + 3 = 6 + 4``, ``5 × 4 = 21 + 5``).
- a lone number on the left (``30 minutes = 30/60``, ``1 hour = 60 minutes``) is a unit
  conversion or a restatement: "cannot judge" unless both sides are equal.
  A number after a label (``Day 3 = 5 + 2 = 7``) or opening a longer chain is no result either.

Claims that read two ways are not judged, since a wrong correction turns a right step
wrong: a sum of quantities in different units (``1 hour + 30 minutes = 90 minutes``), a
percentage added to a number (``$50 - 20% = $40``), and a whole number of times said to
be rounded or to leave a remainder (``50 / 8 = 6 (rounding down)``).

Corrections: each claim's ``expected`` is the right value for its left side as written.
``corrected_text`` replaces the result of the first wrong link with the right value,
written like the original (currency, %, thousands separator, decimals kept), and carries
the corrected value down the chain: later links are evaluated again with it and their
results replaced when they change ("2 + 3 = 6 + 4 = 10" becomes "2 + 3 = 5 + 4 = 9"), as is a
number that restates a changed value ("= 10 = 10 dollars"). A wrong rewriting is replaced by the
value itself.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from verifiers.claims import NOT_ARITHMETIC, Chain, Segment, find_chains
from verifiers.errors import ExpressionError
from verifiers.lexer import FRAC, Token
from verifiers.numbers import format_decimal, format_like, match_stated
from verifiers.parser import BinOp, Expr, Neg, Num
from verifiers.verdict import Claim, Status, Verdict
from verifiers.words import NOT_UNIT, WORDISH, unit_of

MAX_STEP_CHARS = 5_000  # longer text: only its first lines/sentences up to this length are judged
MAX_INPUT_CHARS = 2_000_000  # longer text is refused outright ("input too long")
_MAY_CLAIM = re.compile(r"[=≈≃≅]|\\(?:approx|simeq|sim)|\b(?:is|equals)\b")  # cheap pre-filter


@dataclass(slots=True)
class _Link:
    """How a judged link can be corrected: which token holds its result."""

    shape: str  # "atom", "running", "rewrite", or "first" (the result written before the "=")
    index: int  # token index of the stated number (atom, running); unused for rewrite
    sign: int = 1
    approx: bool = False


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _atom(expr: Expr | None) -> tuple[Num, int] | None:
    if isinstance(expr, Num):
        return expr, 1
    if isinstance(expr, Neg) and isinstance(expr.operand, Num):
        return expr.operand, -1
    return None


def _has_scale(expr: Expr) -> bool:
    return any(n.scale != 1 for n in expr.numbers())


class _Judge:
    """Judges the links of the chains of one step."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.t = tokens
        self.notes: list[str] = []  # why some equalities were not taken as claims

    def span(self, seg: Segment) -> tuple[int, int]:
        return self.t[seg.start].start, self.t[seg.end - 1].end

    def claim(
        self,
        left: Segment,
        right: Segment,
        status: Status,
        reason: str,
        *,
        result: tuple[int, int] | None = None,
        stated_value: Fraction | None = None,
        computed: Fraction | None = None,
        expected: str | None = None,
    ) -> Claim:
        l0, l1 = self.span(left) if left.end > left.start else (self.t[right.start].start,) * 2
        r0, r1 = result or (self.span(right) if right.end > right.start else (l1, l1))
        return Claim(
            expression=self.text[l0:l1],
            stated=self.text[r0:r1],
            status=status,
            span=(min(l0, r0), max(l1, r1)),
            result_span=(r0, r1),
            stated_value=_fmt(stated_value) if stated_value is not None else None,
            computed_value=_fmt(computed) if computed is not None else None,
            expected=expected,
            reason=reason,
        )

    def link(
        self, left: Segment, right: Segment, eq: Token, *, more: bool = False, exact: Fraction | None = None
    ) -> tuple[Claim | None, _Link | None]:
        """Judge ``left = right``; None when it is not an arithmetic claim at all. ``more``: another
        link of the chain follows (``Day 3 = 5 + 2 = 7``); ``exact``: the value before a rounded
        rewriting earlier in the chain (``12 × 5/6 = 12 × 0.8333 = 10``)."""
        for side in (left, right):
            if side.error.startswith(NOT_ARITHMETIC):
                self.notes.append(side.error)
                return None, None  # an equation to solve, not an arithmetic claim
        if left.empty or right.empty:
            return None, None  # a label ("Profit = ...") or prose after the "="
        if left.error or right.error:
            if eq.weak:
                return None, None
            return self.claim(left, right, "unknown", left.error or right.error), None
        assert left.expr is not None and right.expr is not None
        lexpr, rexpr = left.expr, right.expr
        latom, ratom = _atom(lexpr), _atom(rexpr)
        if eq.weak and (latom is not None or ratom is None or not self._weak_result_ok(right)):
            return None, None
        ambiguous = self._ambiguous(lexpr, rexpr)
        if ambiguous:
            return self.claim(left, right, "unknown", ambiguous), None
        try:
            value = lexpr.evaluate()
            rvalue = rexpr.evaluate()
        except ExpressionError as exc:
            return self.claim(left, right, "unknown", str(exc)), None
        if latom is not None:
            if value == rvalue:
                return None if ratom is not None else self.claim(
                    left, right, "correct", "", stated_value=value, computed=rvalue
                ), None
            num, sign = latom  # "15 = 4 × 5": the result is written first
            tok = self.t[num.index]
            if ratom is not None or self._unit_after(left, eq) or more or self._label_before(num.index):
                self.notes.append("a lone number on the left: unit conversion, restatement or label")
                return None, None
            return self.claim(
                right,
                left,
                "wrong",
                f"{self.text[slice(*self.span(right))]} is {format_decimal(rvalue)}",
                result=self.span(left),
                stated_value=value,
                computed=rvalue,
                expected=self.format_result(rvalue, tok, sign),
            ), _Link("first", num.index, sign)
        if ratom is not None:
            if exact is not None and match_stated(exact, self.t[ratom[0].index], ratom[1], approx=eq.approx):
                return self.claim(left, right, "correct", "rounded rewriting", stated_value=exact, computed=value), None
            return self._atom_result(left, right, eq, value, *ratom)
        if value == rvalue:
            return self.claim(left, right, "correct", "", stated_value=rvalue, computed=value), _Link("rewrite", -1)
        if self._rounded_rewrite(lexpr, rexpr, value, rvalue):
            return self.claim(
                left, right, "correct", "rounded rewriting", stated_value=rvalue, computed=value
            ), None  # "12 × 5/6 = 12 × 0.8333": not replaced when a later link is fixed
        running = self._running(rexpr, value, eq.approx)
        if running is not None:
            end = self.t[running.index].end if isinstance(running, Num) else self._node_end(running)
            return self.claim(
                left,
                right,
                "correct",
                "running computation",
                result=(self.t[right.start].start, end),
                stated_value=running.evaluate(),
                computed=value,
            ), (_Link("running", running.index, 1, eq.approx) if isinstance(running, Num) else None)
        if eq.weak:
            return None, None  # "3/4 is equal to $15": a proportion, not a computation
        lead = rexpr.leading()
        rewriting = (
            lead is None
            or (isinstance(rexpr, BinOp) and rexpr.is_fraction_literal)
            or any(n.value == lead.value for n in lexpr.numbers())
            or _restates(lexpr, rexpr, self.t)
        )
        shown = self.text[slice(*self.span(left))]
        if rewriting or lead is None:
            return self.claim(
                left,
                right,
                "wrong",
                f"{shown} is {format_decimal(value)}, not {format_decimal(rvalue)}",
                stated_value=rvalue,
                computed=value,
                expected=self.format_rewrite(value, right),
            ), _Link("rewrite", -1)
        lead_tok = self.t[lead.index]
        sign = _lead_sign(rexpr)  # "10 - 15 = -6 + 7": the written minus is part of the result
        start = self.t[lead.index - 1].start if sign < 0 else lead_tok.start
        return self.claim(
            left,
            right,
            "wrong",
            f"{shown} is {format_decimal(value)}",
            result=(start, lead_tok.end),
            stated_value=lead.value * sign,
            computed=value,
            expected=self.format_result(value, lead_tok, sign),
        ), _Link("running", lead.index, sign, eq.approx)

    def _atom_result(
        self, left: Segment, right: Segment, eq: Token, value: Fraction, num: Num, sign: int
    ) -> tuple[Claim | None, _Link | None]:
        assert left.expr is not None
        tok = self.t[num.index]
        stated = num.value * sign
        how = match_stated(value, tok, sign, approx=eq.approx)
        if how is None and (_has_scale(left.expr) or tok.scale != 1):
            how = self._match_scaled(left.expr, value, tok, sign, eq.approx)
        if how is None and self._cents_after(tok) and match_stated(value * 100, tok, sign, approx=eq.approx):
            how = "dollars as cents"
        if how is None and eq.weak and isinstance(left.expr, BinOp) and left.expr.is_fraction_literal:
            return None, None  # "4/7 is $24": a proportion, not a computation
        if how is None and self._whole_part(value, tok, sign):
            self.notes.append("a whole number of times, with a remainder or rounding")
            return None, None
        shape = _Link("atom", num.index, sign, eq.approx)
        result = (self.span(right)[0], tok.end)
        if how is not None:
            reason = "" if how == "exact" else how
            return self.claim(left, right, "correct", reason, result=result, stated_value=stated, computed=value), shape
        return self.claim(
            left,
            right,
            "wrong",
            f"{self.text[slice(*self.span(left))]} is {format_decimal(value)}",
            result=result,
            stated_value=stated,
            computed=value,
            expected=self.format_result(value, tok, sign),
        ), shape

    def _unit_after(self, left: Segment, eq: Token) -> bool:
        """Words between a lone number and its "=": ``30 minutes = 30/60`` converts units."""
        k = left.end
        while k < len(self.t) and self.t[k] is not eq:
            if self.t[k].kind in ("WORD", "TEXT"):
                return True
            k += 1
        return False

    def _rounded_rewrite(self, lexpr: Expr, rexpr: Expr, value: Fraction, rvalue: Fraction) -> bool:
        """``12 × 5/6 = 12 × 0.8333``: a division on the left written as a rounded decimal on the right,
        the two differing by no more than that rounding can make (half a unit in the last written place of
        each number of two or more decimals, carried through the right side's operations)."""
        if _atom(rexpr) is not None or not _divides(lexpr):
            return False
        bound = self._rounding_bound(rexpr)
        return bound is not None and bound > 0 and abs(value - rvalue) <= bound

    def _rounding_bound(self, expr: Expr) -> Fraction | None:
        """How far ``expr`` can be from its value had its rounded decimals been exact (None: unbounded)."""
        if isinstance(expr, Num):
            decimals = self.t[expr.index].decimals
            return Fraction(1, 2 * 10**decimals) if decimals >= 2 else Fraction(0)
        if isinstance(expr, Neg):
            return self._rounding_bound(expr.operand)
        if not isinstance(expr, BinOp):
            return None
        ea, eb = self._rounding_bound(expr.left), self._rounding_bound(expr.right)
        if ea is None or eb is None:
            return None
        if expr.op in ("+", "-"):
            return ea + eb
        try:
            a, b = abs(expr.left.evaluate()), abs(expr.right.evaluate())
        except ExpressionError:
            return None
        if expr.op == "*":
            return a * eb + b * ea + ea * eb
        if expr.op == "/" and b > eb:
            return (ea * b + a * eb) / (b * (b - eb))
        return Fraction(0) if ea == eb == 0 else None

    def _label_before(self, index: int) -> bool:
        """``Day 3 = 5 + 2``, ``Q3 = ...``: a number right after a word names something; it is no result."""
        before = self.t[index - 1] if index > 0 else None
        return before is not None and before.kind in WORDISH and before.text.lower() not in NOT_UNIT

    def _ambiguous(self, lexpr: Expr, rexpr: Expr) -> str:
        """Why ``lexpr = rexpr`` reads two ways (then it is not judged), or ""."""
        if _percent_sum(lexpr, self.t) or _percent_sum(rexpr, self.t):
            return "a percentage added to a number: a share or a rate"  # "$50 - 20% = $40"
        units: dict[str, set[str]] = {}
        for expr in (lexpr, rexpr):
            if _atom(expr) is None and not _additive(expr):
                continue
            for num in _terms(expr):
                unit = unit_of(self.t, num.index)
                if unit is not None:
                    units.setdefault(unit[0], set()).add(unit[1])
        if any(len(names) > 1 for names in units.values()):
            return "sum of quantities in different units"  # "1 hour + 30 minutes = 90 minutes"
        return ""

    def _whole_part(self, value: Fraction, tok: Token, sign: int) -> bool:
        """``50 / 8 = 6 (rounding down)``, ``10 / 3 = 3 R1``: a stated whole number of times, said
        to be rounded or to leave a remainder, is not the quotient."""
        if not tok.is_integer_literal or value.denominator == 1 or tok.value is None:
            return False
        if tok.value * sign not in (math.floor(value), math.ceil(value)):
            return False
        k = self.t.index(tok) if tok in self.t else len(self.t)
        words = [x.text.lower() for x in self.t[k + 1 : k + 6] if x.kind in WORDISH]
        return any(w in _WHOLE_CUES for w in words) or any(
            pair == ("left", "over") for pair in itertools.pairwise(words)
        )

    def _cents_after(self, tok: Token) -> bool:
        k = self.t.index(tok) + 1 if tok in self.t else len(self.t)
        return k < len(self.t) and self.t[k].text.lower() in ("cents", "cent", "¢")

    def _running(self, rexpr: Expr, value: Fraction, approx: bool) -> Expr | None:
        """The start of ``rexpr`` that equals ``value`` (``5`` in ``5 + 4``, ``1/3`` in ``1/3 of $150``)."""
        node = rexpr
        while isinstance(node, BinOp) and node.op != "^":
            node = node.left
            if isinstance(node, Num):
                return node if match_stated(value, self.t[node.index], approx=approx) else None
            try:
                if node.evaluate() == value:
                    return node
            except ExpressionError:
                return None
        return None

    def _node_end(self, node: Expr) -> int:
        nums = node.numbers()
        return self.t[nums[-1].index].end if nums else 0

    def _weak_result_ok(self, right: Segment) -> bool:
        """``25% of 80 is 20`` yes; ``5 + 3 is 2 more than 6`` no."""
        k = right.end
        words = 0
        t = self.t
        while k < len(t) and t[k].kind in ("WORD", "TEXT") and words < 4:
            if t[k].text.lower() in _WEAK_STOP:
                return False
            k += 1
            words += 1
        return k >= len(t) or t[k].kind == "BREAK"

    def _match_scaled(self, lexpr: Expr, value: Fraction, tok: Token, sign: int, approx: bool) -> str | None:
        try:
            scaled_value = lexpr.evaluate(scaled=True)
        except ExpressionError:
            return None
        for v in (value, scaled_value):
            for mult in (1, tok.scale):
                if match_stated(v / mult, tok, sign, approx=approx):
                    return "scale word"
        return None

    def percent_number(self, value: Fraction, tok: Token) -> bool:
        """For a wrong percentage: is it meant as a number of percent (``× 100 = 25%``)?"""
        assert tok.value is not None
        number = tok.value * 100
        return abs(value - number) < abs(value * 100 - number)

    def format_result(self, value: Fraction, tok: Token, sign: int) -> str:
        as_number = tok.percent and self.percent_number(value, tok)
        body = format_like(abs(value), tok, percent_number=as_number)
        prefix = self.text[tok.start : tok.body_start]
        suffix = self.text[tok.body_end : tok.end]
        if value < 0 and sign > 0:
            return "-" + prefix + body + suffix if prefix else "-" + body + suffix
        if value >= 0 and sign < 0:
            return prefix + body + suffix  # the written minus goes away
        return ("-" if sign < 0 else "") + prefix + body + suffix

    def format_rewrite(self, value: Fraction, right: Segment) -> str:
        rexpr = right.expr
        if isinstance(rexpr, BinOp) and rexpr.is_fraction_literal and value.denominator != 1:
            if self.t[right.start].kind == FRAC:
                return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
            return f"{value.numerator}/{value.denominator}"
        first = self.t[right.start]
        grouped = next((self.t[n.index].grouped for n in (rexpr.numbers() if rexpr else [])), "")
        return (first.currency if first.kind == "NUM" else "") + format_decimal(value, 0, grouped)


# Words after a whole quotient that say it is one ("6 R1", "7 (rounding up)", "6 full packs", "3 with 1 left over").
_WHOLE_CUES = frozenset(
    ("remainder", "r", "leftover", "rounded", "rounding", "round", "full", "whole", "complete", "floor", "ceiling")
)


def _restates(lexpr: Expr, rexpr: Expr, t: list[Token]) -> bool:
    """The right side is the left with one part miscomputed: the same operation, one operand equal in
    value and place, the other a computation on the left (``0.75 × 75 × 3 = 375 × 3``, ``4 × 14 + 3 × 3
    = 196 + 9``, ``= 56 + 10``) or a percentage written without its sign (``25% / 0.40 = 25 / 0.40``).
    Read as running computations they would be "corrected" into false lines (``0.75 × 75 × 3 = 168.75 ×
    3``), while ``2 + 3 = 6 + 3`` and ``5 × 4 = 21 + 5`` stay running computations that dropping a term
    would spoil."""
    if not (isinstance(lexpr, BinOp) and isinstance(rexpr, BinOp) and lexpr.op == rexpr.op):
        return False
    pairs = ((lexpr.left, rexpr.left), (lexpr.right, rexpr.right))
    try:
        same = [a.evaluate() == b.evaluate() for a, b in pairs]
    except ExpressionError:
        return False
    if same.count(True) != 1:
        return False
    part, written = pairs[same.index(False)]
    if isinstance(part, BinOp) or (isinstance(part, Neg) and isinstance(part.operand, BinOp)):
        return True
    if not (isinstance(part, Num) and isinstance(written, Num)):
        return False
    return t[part.index].percent and written.value == part.value * 100


def _ends_right(judge: _Judge, chain: Chain) -> bool:
    """The chain's last number is the value of its first side: ``25% × 80 = 25 × 80 = 2000 / 100 = 20``.
    A wrong link on the way is a slip of notation the chain itself undoes; correcting it would spoil
    the right result (``= 20 × 80 = 1600 / 100 = 16``)."""
    first, last = chain.segments[0].expr, chain.segments[-1].expr
    atom = _atom(last)
    if first is None or atom is None or _atom(first) is not None:
        return False
    try:
        value = first.evaluate()
    except ExpressionError:
        return False
    num, sign = atom
    return match_stated(value, judge.t[num.index], sign, approx=chain.eqs[-1].approx) is not None


def _slip(claim: Claim) -> Claim:
    return dataclasses.replace(
        claim, status="unknown", expected=None, reason=f"{claim.reason}; the chain ends on the right value"
    )


def _restatement(left: Expr, right: Expr, replaced: Fraction | None, overrides: dict[int, Fraction]) -> _Link | None:
    """``right`` is a lone number restating the value ``left`` had before the chain was corrected: a link
    that carries the corrected value on (None when the value did not change or ``right`` says otherwise)."""
    atom = _atom(right)
    if atom is None:
        return None
    try:
        before, after = left.evaluate(), replaced if replaced is not None else left.evaluate(overrides)
        stated = right.evaluate()
    except ExpressionError:
        return None
    if after == before or stated != before:
        return None
    num, sign = atom
    return _Link("atom", num.index, sign)


def _lead_sign(expr: Expr) -> int:
    """-1 when the first number of ``expr`` is written with a minus (``-6 + 7``), else 1."""
    node = expr
    while isinstance(node, BinOp):
        node = node.left
    return -1 if isinstance(node, Neg) and isinstance(node.operand, Num) else 1


def _divides(expr: Expr) -> bool:
    """Does ``expr`` divide (``5/6``, ``100 ÷ 3``, ``\\frac{5}{6}``): the source of a rounded decimal."""
    if isinstance(expr, Neg):
        return _divides(expr.operand)
    return isinstance(expr, BinOp) and (expr.op == "/" or _divides(expr.left) or _divides(expr.right))


def _terms(expr: Expr) -> list[Num]:
    """The lone numbers added or subtracted at the top of ``expr`` (``30 min`` and ``1 h`` in ``1 h + 30 min``)."""
    return [x for x in _flat_terms(expr) if isinstance(x, Num)]


def _additive(expr: Expr) -> bool:
    return isinstance(expr, BinOp) and expr.op in ("+", "-")


def _percent_sum(expr: Expr, t: list[Token]) -> bool:
    """Does ``expr`` add a percentage to a plain number (``$50 - 20%``)? Read as a share (-20% of $50)
    or as a number (-0.2), the two give different values; ``1 - 25%`` gives the same."""
    if isinstance(expr, Neg):
        return _percent_sum(expr.operand, t)
    if not isinstance(expr, BinOp):
        return False
    if _additive(expr):
        terms = _flat_terms(expr)
        percents = [_is_percent(x, t) for x in terms]
        plain = [x for x, p in zip(terms, percents, strict=True) if not p and not (isinstance(x, Num) and x.value == 1)]
        if any(percents) and plain:
            return True
        return any(_percent_sum(x, t) for x in terms)
    return _percent_sum(expr.left, t) or _percent_sum(expr.right, t)


def _flat_terms(expr: Expr) -> list[Expr]:
    if _additive(expr):
        assert isinstance(expr, BinOp)
        return _flat_terms(expr.left) + _flat_terms(expr.right)
    return [expr.operand if isinstance(expr, Neg) else expr]


def _is_percent(expr: Expr, t: list[Token]) -> bool:
    return isinstance(expr, Num) and t[expr.index].percent


_WEAK_STOP = frozenset(
    [
        "more",
        "less",
        "fewer",
        "than",
        "greater",
        "smaller",
        "larger",
        "bigger",
        "higher",
        "lower",
        "times",
        "of",
        "as",
        "per",
        "percent",
    ]
)


def _correct_chain(judge: _Judge, chain: Chain, links: list[_Link | None], edits: list[tuple[int, int, str]]) -> None:
    """Carry corrected values down the chain and record text edits (see module docstring)."""
    overrides: dict[int, Fraction] = {}
    whole: dict[int, Fraction] = {}  # segment position -> value, when the segment was replaced
    t = judge.t
    for k, link in enumerate(links):
        left, right = chain.segments[k], chain.segments[k + 1]
        if left.expr is None or right.expr is None:
            continue
        if link is None:  # "= 205 = 205", "= 205 dollars = $205": a restated number follows its correction
            link = _restatement(left.expr, right.expr, whole.get(k), overrides)
            if link is None:
                continue
        if link.shape == "first":  # "15 = 4 × 5": the stated number is on the left
            left, right = right, left
        lexpr, rexpr = left.expr, right.expr
        assert lexpr is not None and rexpr is not None
        try:
            value = whole[k] if k in whole else lexpr.evaluate(overrides)
            if link.shape == "rewrite":
                if rexpr.evaluate(overrides) == value:
                    continue
                whole[k + 1] = value
                edits.append((*judge.span(right), judge.format_rewrite(value, right)))
                continue
        except ExpressionError:
            continue
        tok = t[link.index]
        if match_stated(value, tok, link.sign, approx=link.approx) is not None:
            continue
        if overrides.get(link.index) is not None:
            continue
        overrides[link.index] = value * link.sign
        if link.sign < 0:
            minus = t[link.index - 1]
            edits.append((minus.start, tok.end, judge.format_result(value, tok, 1)))
        else:
            edits.append((tok.start, tok.end, judge.format_result(value, tok, 1)))


def check_step(text: str, context: Mapping[str, object] | None = None) -> Verdict:
    """Check every arithmetic claim in one reasoning step, exactly.

    Returns a three-valued ``Verdict``: "wrong" if any claim is wrong (``corrected_text``
    then holds the step with the results fixed), else "correct" if any claim is correct,
    else "unknown" (no claim, or none that could be computed). ``context`` is accepted for
    the verifier interface and not used.

    >>> v = check_step("She walked 12 x 4 = 46 miles.")
    >>> v.status, v.corrected_text
    ('wrong', 'She walked 12 x 4 = 48 miles.')
    >>> check_step(r"\\[ 9 \\text{ eggs} \\times \\$2 = \\$18 \\]").status
    'correct'
    >>> check_step("It was sunny.").status
    'unknown'
    """
    if not isinstance(text, str):
        raise TypeError(f"check_step expects a str, not {type(text).__name__}")
    note = ""
    if len(text) > MAX_STEP_CHARS:
        cut = _cut_point(text) if len(text) <= MAX_INPUT_CHARS else 0
        if not cut:
            return Verdict.unknown(f"input too long: {len(text)} characters (limit {MAX_STEP_CHARS})")
        note = f"input too long: judged the first {cut} of {len(text)} characters"
        text = text[:cut]
    if not _MAY_CLAIM.search(text):
        return Verdict.unknown("no claim found" + (f"; {note}" if note else ""))
    tokens, chains = find_chains(text)
    judge = _Judge(text, tokens)
    claims: list[Claim] = []
    edits: list[tuple[int, int, str]] = []
    for chain in chains:
        links: list[_Link | None] = []
        found: list[Claim] = []
        exact: Fraction | None = None
        for k, eq in enumerate(chain.eqs):
            more = k + 1 < len(chain.eqs)
            claim, link = judge.link(chain.segments[k], chain.segments[k + 1], eq, more=more, exact=exact)
            if claim is not None:
                found.append(claim)
                if claim.reason == "rounded rewriting" and claim.computed_value is not None and exact is None:
                    exact = Fraction(claim.computed_value)
            links.append(link)
        if any(c.status == "wrong" for c in found) and _ends_right(judge, chain):
            found = [_slip(c) if c.status == "wrong" else c for c in found]
        claims += found
        if any(c.status == "wrong" for c in found):
            _correct_chain(judge, chain, links, edits)
    corrected = None
    if any(c.status == "wrong" for c in claims):
        corrected = text
        for start, end, new in sorted(edits, reverse=True):
            corrected = corrected[:start] + new + corrected[end:]
    reason = "; ".join(dict.fromkeys(judge.notes)) + " (not judged)" if judge.notes and not claims else ""
    if note:
        reason = f"{reason}; {note}" if reason else note
    return Verdict.from_claims(claims, corrected_text=corrected, reason=reason)


def _cut_point(text: str) -> int:
    """Where to cut a long text so that no claim is cut in half: the last line or sentence
    end within ``MAX_STEP_CHARS`` (0 when there is none in its second half)."""
    head = text[:MAX_STEP_CHARS]
    cut = max(head.rfind("\n"), head.rfind(". ") + 1)
    return cut if cut >= MAX_STEP_CHARS // 2 else 0
