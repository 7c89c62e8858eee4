"""Find the numeric claims inside a step of prose or LaTeX: ``lhs = rhs (= rhs2 ...)``.

The step is tokenized once; each ``=`` (or ``≈``, ``equals``, and a cautious ``is``)
looks left and right for the longest run of expression tokens, skipping unit words
written after a number ("3 bags × $4", "15 \\text{ seconds/egg} \\times 60"). Runs that
meet at the same ``=`` form a chain ``S0 = S1 = S2``. Anything that would change the
value but cannot be read (``\\sqrt``, a variable glued to a number, Unicode digits)
taints the side it touches, so the claim becomes "cannot judge" rather than a
truncated, wrongly judged expression.

Words that act as operators or equalities are rewritten first (``verifiers.words``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from verifiers.errors import ExpressionError, LimitExceededError
from verifiers.lexer import BREAK, EQ, FRAC, LB, LP, NUM, OP, RB, RP, UNSUP, VAR, WORD, Token, tokenize
from verifiers.parser import Expr, parse_tokens
from verifiers.words import MAX_UNIT_WORDS, NOT_UNIT, OPERAND_END, OPERAND_START, WORDISH, prepare, starts_operand

MAX_SEGMENT_TOKENS = 300  # one side of a claim; longer is "cannot judge"
MAX_EQUALITIES = 64  # equalities read per step; the rest of a longer step is not judged
VARIABLE = "algebra with a variable"  # reason for sides that hold a variable
NOT_ARITHMETIC = (VARIABLE, "algebra with a named quantity", "clock time arithmetic")  # no claim at all
_LETTER_UNITS = frozenset("mgLlshck")  # single letters that are units rather than variables
_LABELS = (
    "step day week month year part round game batch phase stage level quarter lap trip test question problem "
    "case item table group box bag row shelf floor room class grade"
)
_LABEL_WORDS = frozenset(_LABELS.split())  # words a number after them names: "Week 2 (3 × 4) = 12"
_ARTICLES = frozenset("aI")  # single-letter words of prose ("a (2 + 3) = 5 point lead"); "A (1 + 0.05)" is an amount
_TRIM_TRIES = 6
_EXPR_KINDS = frozenset((NUM, OP, LP, RP, LB, RB, FRAC))
_TAINT = frozenset((VAR, UNSUP))


@dataclass(slots=True)
class Segment:
    """One side of an ``=``: token range ``[start, end)`` of the expression, its parse, or why not."""

    start: int = 0
    end: int = 0
    expr: Expr | None = None
    error: str = ""  # non-empty: something is there but cannot be judged
    full: bool = True  # the whole run parsed (no trimming), so a chain may continue through it

    @property
    def empty(self) -> bool:
        return self.expr is None and not self.error


@dataclass(slots=True)
class Chain:
    """``segments[0] = segments[1] = ...``; ``eqs[k]`` sits between segments k and k+1."""

    segments: list[Segment] = field(default_factory=list)
    eqs: list[Token] = field(default_factory=list)


def _unit_group_left(t: list[Token], i: int, lo: int) -> int:
    """``t[i]`` is a word: if it ends a unit group glued to an operand, return the operand's index."""
    j = i
    while j - 1 >= lo and t[j - 1].kind in WORDISH and i - j + 1 < MAX_UNIT_WORDS:
        j -= 1
    return j - 1 if j - 1 >= lo and t[j - 1].kind in OPERAND_END else -1


def _is_letter_variable(t: list[Token], i: int) -> bool:
    """A lone letter next to an operator or an ``=``, or multiplying a bracket: ``S + 30``, ``2 * W``,
    ``we get X =``, ``x (2^{300} - 1)``."""
    tok = t[i]
    if tok.kind != WORD or len(tok.text) != 1 or not tok.text.isalpha() or tok.text in _LETTER_UNITS:
        return False
    if i + 1 < len(t) and t[i + 1].kind == LP and tok.text not in _ARTICLES:
        return True
    return (i + 1 < len(t) and t[i + 1].kind in (OP, EQ)) or (i > 0 and t[i - 1].kind == OP)


def _label_number(t: list[Token], i: int) -> bool:
    """``Step 2 (3 × 4)``, ``day 3 (5 + 2)``: a whole number after a word that numbers things, right before
    a bracket, names the bracket's line; it is no factor of it (``Therefore 2(8 + 5)`` still multiplies)."""
    return (
        t[i].is_integer_literal
        and not t[i].currency
        and i + 1 < len(t)
        and t[i + 1].kind == LP
        and i > 0
        and t[i - 1].kind == WORD
        and t[i - 1].text.lower() in _LABEL_WORDS
    )


def _words_ok(t: list[Token], lo: int, hi: int) -> bool:
    """May ``t[lo:hi]`` be a unit (no verbs, pronouns or conjunctions that end a phrase)?"""
    return all(t[k].text.lower() not in NOT_UNIT for k in range(lo, hi))


def _unary_minus_at(t: list[Token], i: int) -> bool:
    """``then -3 + 2``: a minus glued to its operand after a space is a sign, not an operator."""
    tok = t[i]
    return (
        tok.kind == OP
        and tok.op == "-"
        and tok.space_before
        and i + 1 < len(t)
        and not t[i + 1].space_before
        and t[i + 1].kind in OPERAND_START
    )


def scan_left(t: list[Token], e: int) -> tuple[int, str]:
    """Start index of the run of expression tokens ending at ``e`` (an ``=``), and a taint reason."""
    i = e - 1
    depth = 0
    while i >= 0:
        tok = t[i]
        kind = tok.kind
        if kind in _EXPR_KINDS:
            if depth == 0 and _label_number(t, i):
                if i >= 2 and t[i - 2].kind == OP:  # "Day 1 (5 + 2) + Day 2 (3 + 4)": labelled terms
                    return i + 1, "a sum of labelled terms"
                break
            if kind in (RP, RB):
                depth += 1
            elif kind in (LP, LB):
                if depth == 0:
                    if i > 0 and (t[i - 1].kind == OP or t[i - 1].kind in OPERAND_END):
                        return i + 1, "unbalanced parentheses"
                    break
                depth -= 1
            i -= 1
        elif kind in WORDISH:
            nxt = t[i + 1]
            if _is_letter_variable(t, i) and (nxt.kind != EQ or i == e - 1):
                return i + 1, f"{VARIABLE} {tok.text!r}"
            if nxt.kind not in (OP, EQ, RP, RB) or _unary_minus_at(t, i + 1):
                break
            k = _unit_group_left(t, i, 0)
            if k < 0 or not _words_ok(t, k + 1, i + 1):
                if nxt.kind == OP or (nxt.kind in (RP, RB) and depth > 0):
                    return i + 1, "algebra with a named quantity"
                break
            i = k
        elif kind in _TAINT:
            return i + 1, tok.error or f"{VARIABLE} {tok.text!r}"
        else:
            break
        if e - i > MAX_SEGMENT_TOKENS:
            return i + 1, "expression too long"
    return i + 1, ""


def scan_right(t: list[Token], e: int) -> tuple[int, str]:
    """End index (exclusive) of the run of expression tokens after ``e`` (an ``=``), and a taint reason."""
    n = len(t)
    i = e + 1
    depth = 0
    while i < n:
        tok = t[i]
        kind = tok.kind
        if kind in _EXPR_KINDS:
            if kind in (LP, LB):
                depth += 1
            elif kind in (RP, RB):
                if depth == 0:
                    if i + 1 < len(t) and (t[i + 1].kind == OP or t[i + 1].kind in OPERAND_START):
                        return i, "unbalanced parentheses"
                    break
                depth -= 1
            i += 1
        elif kind in WORDISH:
            if _is_letter_variable(t, i):
                return i, f"{VARIABLE} {tok.text!r}"
            if t[i - 1].kind in (OP, LP):
                return i, "algebra with a named quantity"
            if t[i - 1].kind not in OPERAND_END:
                break
            j = i
            while j < n and t[j].kind in WORDISH and j - i < MAX_UNIT_WORDS:
                j += 1
            if _is_letter_variable(t, j - 1):
                return i, f"{VARIABLE} {t[j - 1].text!r}"
            if not _words_ok(t, i, j):
                break
            if j < n and (t[j].kind in (OP, RP, RB) or (t[j].kind == EQ and not t[j].weak)):
                if t[j].kind == OP and t[j].op == "-" and (j + 1 >= n or t[j + 1].kind in WORDISH):
                    break  # "24 clips - the rest": a dash in prose
                i = j
            else:
                break
        elif kind in _TAINT:
            return i, tok.error or f"{VARIABLE} {tok.text!r}"
        else:
            break
        if i - e > MAX_SEGMENT_TOKENS:
            return i, "expression too long"
    return i, ""


def _try(t: list[Token], idx: list[int]) -> Expr | None:
    try:
        return parse_tokens([t[k] for k in idx], idx)
    except LimitExceededError:
        raise
    except ExpressionError:
        return None


def parse_run(t: list[Token], a: int, b: int, side: str, taint: str = "") -> Segment:
    """Parse the run ``t[a:b]`` (units skipped); trim from the outer end when the whole does not parse."""
    idx = [k for k in range(a, b) if t[k].kind in _EXPR_KINDS]
    if not idx:
        return Segment(a, a, error=taint)
    while side == "left" and len(idx) > 1 and t[idx[0]].kind == OP and t[idx[0]].op != "-":
        if idx[0] > 0 and t[idx[0] - 1].kind != BREAK:
            break
        idx.pop(0)  # "**Total:** 5 + 3": markdown, not an operator
    first = t[idx[0]]
    if side == "left" and first.kind == OP and first.op != "-":
        return Segment(idx[0], idx[-1] + 1, None, taint or "could not read the whole left side", False)
    try:
        expr = _try(t, idx)
        if expr is not None:
            return Segment(idx[0], idx[-1] + 1, expr, taint)
        tries = 0
        if side == "left":
            for p in range(1, len(idx)):
                tok = t[idx[p]]
                if not starts_operand(tok) and not (tok.kind == OP and tok.op == "+"):
                    continue
                tries += 1
                if tries > _TRIM_TRIES:
                    break
                expr = _try(t, idx[p:])
                if expr is not None:
                    lost = [t[k] for k in idx[:p]]
                    if any(x.kind in (OP, FRAC, NUM) for x in lost):
                        return Segment(idx[p], idx[-1] + 1, None, taint or "could not read the whole left side", False)
                    return Segment(idx[p], idx[-1] + 1, expr, taint, False)
        else:
            for p in range(len(idx) - 1, 0, -1):
                if t[idx[p - 1]].kind not in OPERAND_END:
                    continue
                tries += 1
                if tries > _TRIM_TRIES:
                    break
                expr = _try(t, idx[:p])
                if expr is not None:
                    rest = idx[p:]
                    first = t[rest[0]]
                    dash = (
                        len(rest) == 1
                        and first.kind == OP
                        and first.op == "-"
                        and (rest[0] + 1 >= len(t) or t[rest[0] + 1].kind == WORD)
                    ) or (first.kind == NUM and first.space_before)  # "= 4 15-minute blocks"
                    if not dash:
                        return Segment(
                            idx[0], idx[p - 1] + 1, None, taint or "could not read the whole right side", False
                        )
                    return Segment(idx[0], idx[p - 1] + 1, expr, taint, False)
    except LimitExceededError as exc:
        return Segment(idx[0], idx[-1] + 1, None, str(exc), False)
    return Segment(idx[0], idx[-1] + 1, None, taint or "not an arithmetic expression", False)


_FIRST_NUMBER = re.compile(r"[0-9½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞]")
_LAST_EQUALITY = re.compile(r".*(?:[=≈≃≅]|\\(?:approx|simeq|sim)|\b(?:is|equals)\b)", re.DOTALL)
_CONTEXT_BEFORE = 80  # characters kept before the first number (\left( \frac{ ...)
_CONTEXT_AFTER = 200  # characters kept after the last equality (result, units, stop words)


def _window(text: str) -> tuple[int, int]:
    """The part of ``text`` that can hold a claim: prose before the first number and after
    the last equality's result cannot, and skipping it keeps checks fast."""
    first = _FIRST_NUMBER.search(text)
    if first is None:
        return 0, 0
    start = max(0, first.start() - _CONTEXT_BEFORE)
    if start:
        space = text.find(" ", start, first.start())
        start = space if space >= 0 else first.start()
    last = _LAST_EQUALITY.match(text)
    end = len(text) if last is None else min(len(text), last.end() + _CONTEXT_AFTER)
    if end < len(text):
        space = text.rfind(" ", last.end() if last else 0, end)
        end = space if space > 0 else end
    return start, end


def find_chains(text: str) -> tuple[list[Token], list[Chain]]:
    """Tokenize ``text`` and return its tokens and every ``=`` chain found in it.

    >>> tokens, chains = find_chains("She walked 12 x 4 = 48 miles.")
    >>> [len(c.segments) for c in chains]
    [2]
    """
    t = prepare(tokenize(text, *_window(text)))
    chains: list[Chain] = []
    current: Chain | None = None
    reaches = -1
    seen = 0
    for e, tok in enumerate(t):
        if tok.kind != EQ:
            continue
        seen += 1
        if seen > MAX_EQUALITIES:
            break
        if current is not None and reaches == e:
            left = current.segments[-1]
        else:
            a, taint = scan_left(t, e)
            left = parse_run(t, a, e, "left", taint)
            current = Chain([left], [])
            chains.append(current)
        b, taint = scan_right(t, e)
        right = parse_run(t, e + 1, b, "right", taint)
        current.segments.append(right)
        current.eqs.append(tok)
        reaches = b if right.full and not right.error and not tok.weak else -1
    return t, chains
