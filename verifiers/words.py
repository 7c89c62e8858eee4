"""Words that change how numbers read: operators (``x``, ``times``, ``divided by``, ``of``),
equalities (``equals``, ``is``, ``is equal to``), "approximately", scale words ("dozen"),
mixed numbers ("1 and 1/4"), and units (``hours/day``, ``(Samuel)``).

``prepare`` rewrites a token list once, by context only: ``x`` is a multiplication only
between two operands, ``of`` only after a percentage or a fraction ("25% of 80"), ``is``
only between an operand and a number.
"""

from __future__ import annotations

from verifiers.lexer import EQ, FRAC, LB, LP, NUM, OP, RB, RP, TEXT, VAR, WORD, Token

MAX_UNIT_WORDS = 8  # words allowed between a number and the next operator ("pairs of jeans")

# words that end a unit: prose between a number and an operator is not a unit
NOT_UNIT = frozenset(
    [
        "because",
        "so",
        "since",
        "then",
        "is",
        "are",
        "was",
        "were",
        "which",
        "that",
        "if",
        "when",
        "gives",
        "give",
        "get",
        "gets",
        "we",
        "he",
        "she",
        "they",
        "it",
        "i",
        "you",
        "has",
        "have",
        "had",
        "will",
        "would",
        "equals",
        "means",
    ]
)

WORDISH = frozenset((WORD, TEXT))
OPERAND_END = frozenset((NUM, RP, RB))
OPERAND_START = frozenset((NUM, LP, LB, FRAC))

_WORD_OPS = {"x": "*", "times": "*", "plus": "+", "minus": "-", "multiplied": "*", "divided": "/"}
_APPROX_WORDS = frozenset(("approximately", "approx", "about", "roughly", "around", "nearly", "almost"))
SCALE_WORDS = {
    "dozen": 12,
    "hundred": 100,
    "thousand": 1_000,
    "million": 1_000_000,
    "billion": 1_000_000_000,
    "trillion": 1_000_000_000_000,
}


_SPECIAL_KINDS = frozenset((WORD, TEXT, VAR, OP))
_SPECIAL_WORDS = frozenset((*_WORD_OPS, *_APPROX_WORDS, *SCALE_WORDS, "and", "of", "equals", "is"))


def word_of(tok: Token) -> str:
    return tok.text.lower() if tok.kind in WORDISH or tok.kind == VAR else ""


def _operand_before(out: list[Token]) -> bool:
    """Is there an operand right before, possibly followed by a few unit words?"""
    k = len(out) - 1
    words = 0
    while k >= 0 and out[k].kind in WORDISH and words < 3 and out[k].text.lower() not in NOT_UNIT:
        k -= 1
        words += 1
    return k >= 0 and out[k].kind in OPERAND_END


def starts_operand(tok: Token | None) -> bool:
    return tok is not None and (tok.kind in OPERAND_START or (tok.kind == OP and tok.op == "-"))


def prepare(tokens: list[Token]) -> list[Token]:
    """Turn context-dependent words into operators and equalities; mark unit slashes and scales."""
    out: list[Token] = []
    n = len(tokens)
    i = 0
    append = out.append
    while i < n:
        tok = tokens[i]
        kind = tok.kind
        if kind not in _SPECIAL_KINDS:
            append(tok)
            i += 1
            continue
        w = word_of(tok)
        if kind != OP and w not in _SPECIAL_WORDS:
            append(tok)
            i += 1
            continue
        nxt = tokens[i + 1] if i + 1 < n else None
        if w == "and" and _mixed_with_and(out, tokens, i):
            continue_at = _merge_mixed(out, tokens, i)
            i = continue_at
            continue
        if w:
            if w in _WORD_OPS:
                after = i + 1
                if w in ("multiplied", "divided"):
                    if not (nxt is not None and word_of(nxt) == "by"):
                        out.append(tok)
                        i += 1
                        continue
                    after = i + 2
                following = tokens[after] if after < n else None
                if _operand_before(out) and following is not None and following.kind in OPERAND_START:
                    out.append(Token(OP, tok.text, tok.start, tokens[after - 1].end, op=_WORD_OPS[w]))
                    i = after
                    continue
            elif w == "of" and out and starts_operand(nxt) and _fraction_or_percent_before(out):
                out.append(Token(OP, tok.text, tok.start, tok.end, op="*"))
                i += 1
                continue
            elif w == "equals" and _operand_before(out):
                out.append(Token(EQ, tok.text, tok.start, tok.end))
                i += 1
                continue
            elif w == "is" and _operand_before(out):
                if nxt is not None and word_of(nxt) == "equal" and i + 2 < n and word_of(tokens[i + 2]) == "to":
                    out.append(Token(EQ, "is equal to", tok.start, tokens[i + 2].end, weak=True))
                    i += 3
                    continue
                if starts_operand(nxt):
                    out.append(Token(EQ, tok.text, tok.start, tok.end, weak=True))
                    i += 1
                    continue
                if nxt is not None and word_of(nxt) in _APPROX_WORDS and i + 2 < n and starts_operand(tokens[i + 2]):
                    out.append(Token(EQ, tok.text, tok.start, nxt.end, weak=True, approx=True))
                    i += 2
                    continue
            elif w in _APPROX_WORDS and out and out[-1].kind == EQ:
                out[-1].approx = True
                i += 1
                continue
            elif w in SCALE_WORDS and out and out[-1].kind == NUM:
                out[-1].scale = SCALE_WORDS[w]
        elif (
            tok.kind == OP
            and tok.op == "/"
            and nxt is not None
            and nxt.kind in WORDISH
            and word_of(nxt) not in _WORD_OPS
            and out
            and out[-1].kind in (NUM, WORD, TEXT, RP)
        ):  # "hours/day", "$100/day": part of a unit
            out.append(Token(WORD, tok.text, tok.start, tok.end))
            i += 1
            continue
        out.append(tok)
        i += 1
    if any(t.kind == LP for t in out):
        _unit_parentheses(out)
    return out


def _unit_parentheses(t: list[Token]) -> None:
    """``8 friends + 1 (Samuel) + 1 (Cathy)``: a parenthesised group of words after a number
    is part of its unit; its parentheses become words."""
    n = len(t)
    for i in range(1, n):
        if t[i].kind != LP or not t[i].space_before or t[i - 1].kind not in (NUM, WORD, TEXT):
            continue
        j = i + 1
        while j < n and t[j].kind in WORDISH and j - i <= MAX_UNIT_WORDS:
            j += 1
        if j == i + 1 or j >= n or t[j].kind != RP:
            continue
        k = i - 1
        while k >= 0 and t[k].kind in WORDISH:
            k -= 1
        if k >= 0 and t[k].kind == NUM:
            t[i].kind = WORD
            t[j].kind = WORD


def _mixed_with_and(out: list[Token], t: list[Token], i: int) -> bool:
    """``1 and 1/4``: an integer, "and", then a proper fraction of integers."""
    if not out or not out[-1].is_integer_literal or i + 3 >= len(t):
        return False
    num, slash, den = t[i + 1], t[i + 2], t[i + 3]
    if not (num.is_integer_literal and slash.kind == OP and slash.op == "/" and den.is_integer_literal):
        return False
    if i + 4 < len(t) and t[i + 4].kind in (OP, LP, FRAC) and t[i + 4].op != "-":
        return False  # 1 and 1/4 * 3: leave it alone
    assert num.value is not None and den.value is not None
    return 0 < num.value < den.value


def _merge_mixed(out: list[Token], t: list[Token], i: int) -> int:
    whole, num, den = out[-1], t[i + 1], t[i + 3]
    assert whole.value is not None and num.value is not None and den.value is not None
    whole.value = whole.value + num.value / den.value
    whole.text = whole.text + " and " + num.text + "/" + den.text
    whole.end = den.end
    whole.body_end = den.end
    whole.mixed = True
    return i + 4


def _fraction_or_percent_before(out: list[Token]) -> bool:
    last = out[-1]
    if last.kind == NUM:
        return last.percent or (len(out) >= 2 and out[-2].kind == OP and out[-2].op == "/")
    return last.kind == RB  # \frac{1}{2} of


def _unit_table() -> dict[str, tuple[str, str]]:
    groups = {
        "time": {
            "second": "second seconds sec secs",
            "minute": "minute minutes min mins",
            "hour": "hour hours hr hrs h",
            "day": "day days",
            "week": "week weeks",
            "month": "month months",
            "year": "year years",
        },
        "length": {
            "inch": "inch inches",
            "foot": "foot feet ft",
            "yard": "yard yards yd",
            "mile": "mile miles",
            "cm": "cm centimeter centimeters centimetre centimetres",
            "m": "meter meters metre metres",
            "km": "km kilometer kilometers kilometre kilometres",
        },
        "money": {"dollar": "dollar dollars $ \\$", "cent": "cent cents ¢"},
        "mass": {
            "gram": "g gram grams",
            "kg": "kg kilogram kilograms",
            "pound": "lb lbs pound pounds",
            "oz": "oz ounce ounces",
        },
        "volume": {"ml": "ml milliliter milliliters", "liter": "liter liters litre litres", "gallon": "gallon gallons"},
    }
    return {w: (dim, unit) for dim, units in groups.items() for unit, words in units.items() for w in words.split()}


UNITS = _unit_table()  # unit word -> (dimension, unit): "mins" -> ("time", "minute")


def unit_of(t: list[Token], k: int) -> tuple[str, str] | None:
    """The unit a number ``t[k]`` is written with: its currency, or a known unit word right after it
    (``30 minutes``, ``30 \\text{ min}``); None for a rate (``km/h``) or an unknown word."""
    tok = t[k]
    if tok.currency:
        return UNITS.get(tok.currency)
    if k + 1 >= len(t) or t[k + 1].kind not in WORDISH:
        return None
    words = t[k + 1].text.lower().split()
    if not words or "/" in words[0] or (k + 2 < len(t) and t[k + 2].text == "/"):
        return None
    return UNITS.get(words[0])
