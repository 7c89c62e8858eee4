"""Tokenizer for arithmetic written by models and people, in plain text and in LaTeX.

The text is untrusted: one precompiled regular expression with a whitelist of forms,
no ``eval``. Every token keeps its ``(start, end)`` span in the original text, so a
claim can be highlighted and a stated result replaced in place.

Token kinds:

- ``NUM``   a number: ``12``, ``1,000``, ``1{,}000``, ``0.5``, ``.5``, ``$4``, ``\\$4``,
  ``25%``, ``25\\%``, ``1 1/2``, ``1e5``.
- ``OP``    ``+ - * / ^`` (also ``× ÷ − · ** \\times \\cdot \\div``; words like ``x`` are
  turned into ``OP`` later, by context, in ``claims``).
- ``EQ``    ``=``; approximate: ``≈``, ``\\approx``.
- ``LP RP`` ``( ) [ ] \\left( \\right)``; ``LB RB`` ``{ }``; ``FRAC`` ``\\frac \\dfrac \\tfrac``.
- ``WORD``  a word, or a subscript glued to a name (``\\text{Distance}_1``, ``d_{2}``); ``TEXT``
  the content of ``\\text{...}``/``\\mathrm{...}`` (units, labels).
- ``VAR``   a letter glued to a number (``2x``, ``0.4N``): algebra, cannot judge.
- ``UNSUP`` something that would change the value but is not supported (``\\sqrt``, ``π``,
  Unicode digits, a misplaced comma such as ``2,0560``): a claim touching it cannot be judged.
- ``BREAK`` punctuation, math delimiters (``\\( \\) \\[ \\]``) and list markers opening a line
  (``-``, ``(2)``, ``3)``): ends an expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

NUM, OP, EQ, LP, RP, LB, RB, FRAC, WORD, TEXT, VAR, UNSUP, BREAK = (
    "NUM",
    "OP",
    "EQ",
    "LP",
    "RP",
    "LB",
    "RB",
    "FRAC",
    "WORD",
    "TEXT",
    "VAR",
    "UNSUP",
    "BREAK",
)

MAX_NUMBER_DIGITS = 60  # digits in one written number; more is "cannot judge"
MAX_SCI_EXPONENT = 1000  # |e| in 1e308; more is "cannot judge"

_CURRENCY = r"(?:(?:\\\$|\$|€|£|¥|₹) ?)"
_BODY = r"(?:[0-9]{1,3}(?:(?:,|\{,\})[0-9]{3})+(?![0-9])(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_GROUPED = r"[0-9]{1,3}(?:,[0-9]{3})+(?![0-9]|,[0-9])"  # a well-formed 1,000,000
_BAD_GROUPING = "(?:" + _CURRENCY + ")?(?!" + _GROUPED + r")[0-9]+(?:,[0-9]+)+(?:\.[0-9]+)?"  # 2,0560 or 1,08

_COMMAND_END = re.compile(r"\\[a-zA-Z]+\Z")  # a LaTeX command right before a subscript
_TEXT_COMMANDS = "text|textrm|textnormal|mathrm|mbox|textit|mathit|textsf|mathsf|operatorname|unit|hbox"
_TRANSPARENT = (
    "boxed|mathbf|textbf|bm|boldsymbol|underline|displaystyle|textstyle|"
    "left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg|middle|color|phantom"
)

_MASTER = re.compile(
    r"""
    (?P<ws>(?:\$(?![0-9.])|[ \t\r\n\f\v\u00a0\u2009\u202f]|\\[,;:!> ]|\\q?quad(?![a-zA-Z])|~|&
             |\\color\{[^{}]*\}|\\(?:left|right)\.)+)
   |(?P<delim>\\[()\[\]\\]|\$\$)
   |(?P<item>\(?(?:[0-9]{1,2}|[a-zA-Z])\)(?=[ \t]+(?![-+*/×÷·=≈^]|x[ \t]|\\(?:times|cdot|div)(?![a-zA-Z]))))
   |(?P<sub>(?<=[A-Za-z}])_(?:\{[^{}]*\}|[0-9A-Za-z]+))
   |(?P<badnum>"""
    + _BAD_GROUPING
    + r""")
   |(?P<clock>[0-9]{1,2}:[0-9]{2}(?![0-9]))
   |(?P<ordinal>[0-9]+(?:st|nd|rd|th)(?![a-zA-Z]))
   |(?P<mixed>(?P<mcur>"""
    + _CURRENCY
    + r""")?(?P<mint>[0-9]{1,9})[ ](?P<mnum>[0-9]{1,9})/(?P<mden>[0-9]{1,9})(?![0-9./,]))
   |(?P<num>(?P<cur>"""
    + _CURRENCY
    + r""")?(?P<body>"""
    + _BODY
    + r""")(?P<sci>[eE][+-]?[0-9]+(?![a-zA-Z]))?(?P<dots>\.\.\.|…)?(?P<pct>[ ]?\\?%|[ ]?percent(?![a-zA-Z]))?)
   |(?P<esc>\\[$%#_&{}])
   |(?P<vulgar>(?P<vwhole>[0-9]{1,9})?(?P<vfrac>[½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞]))
   |(?P<super>[⁰¹²³⁴-⁹]+)
   |(?P<word>[^\W\d_]+(?:['’-][^\W\d_]+)*)
   |(?P<text>\\(?:"""
    + _TEXT_COMMANDS
    + r""")\s*\{(?P<tbody>[^{}]*)\})
   |(?P<frac>\\[dtc]?frac(?![a-zA-Z]))
   |(?P<transparent>\\(?:"""
    + _TEXT_COMMANDS
    + "|"
    + _TRANSPARENT
    + r""")(?![a-zA-Z]))
   |(?P<opcmd>\\(?:times|cdot|ast|div)(?![a-zA-Z]))
   |(?P<approx>\\(?:approx|simeq|sim|thickapprox)(?![a-zA-Z])|[≈≃≅])
   |(?P<cmd>\\[a-zA-Z]+|\\.)
   |(?P<pow>\*\*)
   |(?P<floordiv>//)
   |(?P<eq>==?(?![=>]))
   |(?P<op>[-+*/^×÷−–·⋅∙∕])
   |(?P<lp>[(\[])
   |(?P<rp>[)\]])
   |(?P<lb>\{)
   |(?P<rb>\})
   |(?P<udigit>\d)
   |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_OP_NORMAL = {
    "+": "+",
    "-": "-",
    "−": "-",
    "–": "-",
    "*": "*",
    "×": "*",
    "·": "*",
    "⋅": "*",
    "∙": "*",
    "/": "/",
    "∕": "/",
    "÷": "/",
    "^": "^",
    "\\times": "*",
    "\\cdot": "*",
    "\\ast": "*",
    "\\div": "/",
    "**": "^",
}
_VULGAR = {
    c: Fraction(int(n), int(d))
    for c, (n, d) in zip(
        "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞",
        (
            f.split("/")
            for f in [
                "1/2",
                "1/3",
                "2/3",
                "1/4",
                "3/4",
                "1/5",
                "2/5",
                "3/5",
                "4/5",
                "1/6",
                "5/6",
                "1/8",
                "3/8",
                "5/8",
                "7/8",
            ]
        ),
        strict=True,
    )
}
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_UNSUPPORTED_CHARS = frozenset("√∛π∑∏∫!∞")


@dataclass(slots=True)
class Token:
    """One lexeme with its span; numbers carry their exact value and how they were written."""

    kind: str
    text: str
    start: int
    end: int
    op: str = ""  # normalized operator for OP ("+", "-", "*", "/", "^")
    value: Fraction | None = None  # NUM: exact value (percent already divided by 100)
    error: str = ""  # NUM over a cap: why it cannot be used
    body_start: int = 0  # NUM: span of the digits only (without currency or percent)
    body_end: int = 0
    currency: str = ""  # NUM: "$", "\\$", "€", ...
    percent: bool = False  # NUM: written with %
    decimals: int = 0  # NUM: digits after the decimal point as written
    grouped: str = ""  # NUM: thousands separator as written ("," or "{,}")
    mixed: bool = False  # NUM: a mixed number like 1 1/2
    truncated: bool = False  # NUM: written with "..." (16.66...): digits cut, not rounded
    space_before: bool = True  # whitespace (or start of text) right before the token
    approx: bool = False  # EQ: ≈ and friends
    weak: bool = False  # EQ: a word like "is" (only simple claims)
    scale: int = 1  # NUM: followed by "dozen", "million", ... (applied only when asked)

    @property
    def is_integer_literal(self) -> bool:
        return self.kind == NUM and not self.decimals and not self.percent and not self.mixed


def _number_value(body: str, sci: str | None) -> tuple[Fraction | None, int, str, str]:
    """Exact value of a number body; returns (value, decimals, grouping, error)."""
    grouped = "{,}" if "{,}" in body else ("," if "," in body else "")
    digits = body.replace("{,}", "").replace(",", "")
    whole, _, frac = digits.partition(".")
    if len(whole.lstrip("0")) + len(frac) > MAX_NUMBER_DIGITS:
        return None, len(frac), grouped, f"number has more than {MAX_NUMBER_DIGITS} digits"
    if not frac:
        value = Fraction(int(whole))
    else:
        value = Fraction(int(whole or "0") * 10 ** len(frac) + int(frac), 10 ** len(frac))
    if sci:
        exponent = int(sci[1:])
        if abs(exponent) > MAX_SCI_EXPONENT:
            return None, len(frac), grouped, f"exponent {exponent} is over the cap of {MAX_SCI_EXPONENT}"
        value *= Fraction(10) ** exponent
    return value, len(frac), grouped, ""


_BULLETS = ("-", "*", "+")


def _opens_line(text: str, at: int) -> bool:
    """Is ``text[at]`` the first non-blank character of its line?"""
    return not text[text.rfind("\n", 0, at) + 1 : at].strip()


def tokenize(text: str, start: int = 0, end: int | None = None) -> list[Token]:
    """Split ``text[start:end]`` into tokens (spans index ``text``); never raises on any input
    (unknown characters become BREAK).

    >>> [t.text for t in tokenize(r"\\( 3 \\times \\$4 = \\$12 \\)")]
    ['\\\\(', '3', '\\\\times', '\\\\$4', '=', '\\\\$12', '\\\\)']
    """
    tokens: list[Token] = []
    append = tokens.append
    space = True
    for m in _MASTER.finditer(text, start, len(text) if end is None else end):
        kind = m.lastgroup
        start, end = m.span()
        if kind == "ws" or kind == "transparent":
            space = True
            continue
        raw = m.group()
        if kind == "word":
            if not space and len(raw) == 1 and tokens and tokens[-1].kind in (NUM, RP):
                tok = Token(VAR, raw, start, end)  # 2x, 0.4N: algebra
            else:
                tok = Token(WORD, raw, start, end)
        elif kind == "num":
            body = m.group("body")
            value, decimals, grouped, error = _number_value(body, m.group("sci"))
            pct = m.group("pct")
            if pct and value is not None:
                value /= 100
            tok = Token(
                NUM,
                raw,
                start,
                end,
                value=value,
                error=error,
                body_start=m.start("body"),
                body_end=m.end("sci") if m.group("sci") else m.end("body"),
                currency=(m.group("cur") or "").strip(),
                percent=bool(pct),
                decimals=decimals,
                grouped=grouped,
                truncated=bool(m.group("dots")),
            )
        elif kind == "mixed":
            whole, num, den = int(m.group("mint")), int(m.group("mnum")), int(m.group("mden"))
            if 0 < num < den:
                tok = Token(
                    NUM,
                    raw,
                    start,
                    end,
                    value=whole + Fraction(num, den),
                    body_start=m.start("mint"),
                    body_end=end,
                    currency=(m.group("mcur") or "").strip(),
                    mixed=True,
                )
            else:  # "3 4/2" is not a mixed number: lex it again as a number then a fraction
                cut = m.end("mint")
                tokens.extend(tokenize_fragment(text, start, cut, space))
                tokens.extend(tokenize_fragment(text, cut, end, True))
                space = False
                continue
        elif kind == "item":
            if not _opens_line(text, start):  # "(3 + 4) \times 2": only a line start holds an item number
                tokens.extend(tokenize_fragment(text, start, end, space))
                space = False
                continue
            tok = Token(BREAK, raw, start, end)  # "(2) 3 + 4 = 7": a list item number, not a factor
        elif kind == "sub":
            if _COMMAND_END.search(text, max(0, start - 32), start):  # "\log_2 8", "\sum_{i=1}"
                tok = Token(UNSUP, raw, start, end, error="a subscript on a command (\\log_2, \\sum_i)")
            else:
                tok = Token(WORD, raw, start, end)  # "\text{Distance}_1": part of a name, not a number
        elif kind == "badnum":
            tok = Token(UNSUP, raw, start, end, error=f"malformed number {raw}")  # "2,0560", "1,08"
        elif kind == "op" and raw in _BULLETS and _opens_line(text, start) and text[end : end + 1] in (" ", "\t"):
            tok = Token(BREAK, raw, start, end)  # a list bullet ("   - 138 minus 12 equals 126"), not a sign
        elif kind == "op" or kind == "opcmd" or kind == "pow":
            tok = Token(OP, raw, start, end, op=_OP_NORMAL[raw])
        elif kind == "eq":
            tok = Token(EQ, raw, start, end)
        elif kind == "approx":
            tok = Token(EQ, raw, start, end, approx=True)
        elif kind == "lp":
            tok = Token(LP, raw, start, end)
        elif kind == "rp":
            tok = Token(RP, raw, start, end)
        elif kind == "lb":
            tok = Token(LB, raw, start, end)
        elif kind == "rb":
            tok = Token(RB, raw, start, end)
        elif kind == "frac":
            tok = Token(FRAC, raw, start, end)
        elif kind == "text":
            tok = Token(TEXT, m.group("tbody").strip(), start, end)
        elif kind == "super":
            append(Token(OP, "^", start, start, op="^", space_before=space))
            digits = raw.translate(_SUPERSCRIPT)
            tok = Token(NUM, raw, start, end, value=Fraction(int(digits)), body_start=start, body_end=end)
            tok.space_before = False
            append(tok)
            space = False
            continue
        elif kind == "udigit":
            tok = Token(UNSUP, raw, start, end, error="non-ASCII digit")
        elif kind == "cmd":
            tok = Token(UNSUP, raw, start, end, error=f"unsupported LaTeX {raw}")
        elif kind == "vulgar":
            value = _VULGAR[m.group("vfrac")] + int(m.group("vwhole") or 0)
            tok = Token(NUM, raw, start, end, value=value, body_start=start, body_end=end, mixed=True)
        elif kind == "floordiv":
            tok = Token(OP, raw, start, end, op="//")
        elif kind == "ordinal":
            tok = Token(WORD, raw, start, end)
        elif kind == "clock":
            tok = Token(VAR, raw, start, end, error="clock time arithmetic")
        elif kind == "delim" or kind == "esc":
            tok = Token(BREAK, raw, start, end)
        elif raw in _UNSUPPORTED_CHARS:
            tok = Token(UNSUP, raw, start, end, error=f"unsupported symbol {raw}")
        else:
            tok = Token(BREAK, raw, start, end)
        tok.space_before = space
        append(tok)
        space = False
    return tokens


def tokenize_fragment(text: str, start: int, end: int, space_before: bool) -> list[Token]:
    """Tokenize ``text[start:end]`` with spans relative to ``text``."""
    out = tokenize(text[start:end])
    for tok in out:
        tok.start += start
        tok.end += start
        tok.body_start += start
        tok.body_end += start
    if out:
        out[0].space_before = space_before
    return out
