"""Final answers: pull the answer out of a solution, and decide whether two answers agree.

Extraction strategies (a policy picks which, in which order):

- ``boxed``       the last ``\\boxed{...}`` (braces balanced)
- ``answer_is``   "The (final) answer is N" / "Answer: N"
- ``hashes``      GSM8K's "#### N"
- ``last_number`` the last number in the text, as a fallback

Equivalence tries this package's exact parser first (integers, decimals, fractions,
percentages, ``\\frac``, currency, thousands separators); only when that cannot read an
answer does it ask HF Math-Verify (symbolic LaTeX), with Math-Verify's signal-based
timeouts switched off (they fail outside the main thread) and time bounded instead by
capping the length of what it is given.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, TimeoutError
from fractions import Fraction

from orchestrator.errors import InputError
from verifiers.errors import ExpressionError, LimitExceededError
from verifiers.parser import parse_expression

STRATEGIES = ("boxed", "answer_is", "hashes", "last_number")
DEFAULT_STRATEGIES = STRATEGIES
STATED_STRATEGIES = ("boxed", "answer_is", "hashes")  # those that find an answer only where the text states one
MAX_ANSWER_CHARS = 300  # longer answers are not read at all
MATH_VERIFY_MAX_CHARS = 100  # Math-Verify's LaTeX parser slows down fast with size and nesting:
MATH_VERIFY_MAX_DEPTH = 4  # brackets nested deeper than this are not handed to it
MATH_VERIFY_TIMEOUT_S = 2.0  # and the caller stops waiting after this long ("cannot judge")
MAX_TEXT_CHARS = 200_000  # extraction looks at the last this many characters

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*(?::\s*)?(?P<ans>[^\n]{1,200})", re.IGNORECASE)
_HASHES = re.compile(r"####\s*(?P<ans>[^\n]{1,200})")
_NUMBER = re.compile(
    r"-?\s?(?:\\\$|\$)?\s?(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)(?:\.[0-9]+)?(?:\s?/\s?[0-9]+)?\s?(?:\\?%)?"
)
_LEAD_NUMBER = re.compile(
    r"\s*(?:\\\(|\\\[|\$\$?)?\s*(?P<ans>-?\s?(?:\\\$|\$)?\s?[0-9][0-9,]*(?:\.[0-9]+)?(?:\s?/\s?[0-9]+)?\s?(?:\\?%)?)"
)
_UNWRAP = re.compile(r"^\s*(?:\\\(|\\\[|\$\$?)\s*(.*?)\s*(?:\\\)|\\\]|\$\$?)?\s*$", re.DOTALL)
# a unit in text, with its power if any ("\\text{ cm}^2": the 2 is the unit's, not the number's)
_TEXT_CMD = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{[^{}]*\}(?:\s*\^\s*(?:\{\s*[0-9]\s*\}|[0-9]))?")
_CLEAN = re.compile(r"\\[,;!: ]|\\(?:left|right|displaystyle)|\\?\$")
_TRAILING_WORDS = re.compile(r"(?<![\\A-Za-z])[A-Za-z][A-Za-z\s.]*$")  # "18 eggs" -> "18"


def _boxed(text: str) -> str | None:
    last = None
    for m in _BOXED.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            last = text[m.end() : i - 1].strip()
    return last or None


def _answer_is(text: str) -> str | None:
    found = None
    for m in _ANSWER_IS.finditer(text):
        ans = m.group("ans")
        boxed = _boxed(ans)
        if boxed:
            found = boxed
            continue
        lead = _LEAD_NUMBER.match(ans)
        if lead:
            found = lead.group("ans").strip()
    return found


def _hashes(text: str) -> str | None:
    found = None
    for m in _HASHES.finditer(text):
        lead = _LEAD_NUMBER.match(m.group("ans"))
        found = lead.group("ans").strip() if lead else (m.group("ans").strip().rstrip(".") or None)
    return found


def _last_number(text: str) -> str | None:
    found = None
    for m in _NUMBER.finditer(text):
        found = m.group().strip()
    return found


_EXTRACTORS = {"boxed": _boxed, "answer_is": _answer_is, "hashes": _hashes, "last_number": _last_number}


def extract_answer(text: str, *, strategies: Sequence[str] = DEFAULT_STRATEGIES) -> str | None:
    """The final answer written in ``text`` by the first strategy that finds one, or None.

    >>> extract_answer("So she has 5 + 3 = 8 apples. The answer is 8.")
    '8'
    >>> extract_answer(r"Thus \\(\\boxed{\\frac{3}{4}}\\).")
    '\\\\frac{3}{4}'
    >>> extract_answer("... #### 1,200", strategies=("hashes",))
    '1,200'
    """
    unknown = [s for s in strategies if s not in _EXTRACTORS]
    if unknown:
        raise InputError(f"unknown answer strategy {unknown[0]!r}; known: {', '.join(STRATEGIES)}")
    text = text[-MAX_TEXT_CHARS:]
    for name in strategies:
        found = _EXTRACTORS[name](text)
        if found:
            return found
    return None


def _plain_value(answer: str) -> tuple[Fraction, bool] | None:
    """Exact value of a plain answer (and whether it was a percentage), with our own parser."""
    inner = _UNWRAP.match(answer)
    text = inner.group(1) if inner else answer
    text = _TEXT_CMD.sub("", text)
    boxed = _boxed(text)
    if boxed is not None:
        text = boxed
    if len(text) > 4 * MAX_ANSWER_CHARS:  # long text is no plain answer; _TRAILING_WORDS is slow on it
        return None
    text = _TRAILING_WORDS.sub("", _CLEAN.sub("", text)).strip().rstrip(".").strip()
    if not text or len(text) > MAX_ANSWER_CHARS:
        return None
    percent = text.endswith("%")
    return parse_expression(text.replace(",", "") if "{,}" not in text else text).evaluate(), percent


_BIG_POWER = re.compile(r"\^\s*\{?\s*[0-9]{3}|\^[^\^]*\^|\*\*|!")


def _safe_for_math_verify(answer: str) -> bool:
    """Small enough that Math-Verify (sympy underneath) answers quickly."""
    if len(answer) > MATH_VERIFY_MAX_CHARS or _BIG_POWER.search(answer):
        return False
    depth = deepest = 0
    for ch in answer:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest <= MATH_VERIFY_MAX_DEPTH


_executor: ThreadPoolExecutor | None = None


def _math_verify(gold: str, predicted: str) -> bool | None:
    if not (_safe_for_math_verify(gold) and _safe_for_math_verify(predicted)):
        return None
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="math-verify")
    future = _executor.submit(_math_verify_now, gold, predicted)
    try:
        return future.result(timeout=MATH_VERIFY_TIMEOUT_S)
    except TimeoutError:
        return None


def _math_verify_now(gold: str, predicted: str) -> bool | None:
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - math-verify is a dependency
        return None
    _quiet_math_verify()

    def wrap(s: str) -> str:
        return s if "$" in s or "\\(" in s or "\\[" in s or "\\boxed" in s else f"${s}$"

    try:
        g = parse(wrap(gold), parsing_timeout=None)
        p = parse(wrap(predicted), parsing_timeout=None)
        if not g or not p:
            return None
        return bool(verify(g, p, timeout_seconds=None))
    except Exception:  # Math-Verify is third-party code on untrusted text: any failure is "cannot judge"
        return None


class _DropTimeoutNotice(logging.Filter):
    """Math-Verify warns once that its timeout is off; here that is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


def _quiet_math_verify() -> None:
    for name in ("math_verify.parser", "math_verify.grader"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropTimeoutNotice) for f in log.filters):
            log.addFilter(_DropTimeoutNotice())


def answer_value(answer: str) -> Fraction | None:
    """The exact value of a plain answer ("$1,200", "\\frac{3}{4}", "25%" is 1/4), or None when it is not
    one; our own parser only (no Math-Verify), so it is cheap and never slow.

    >>> answer_value(r"\\frac{3}{4}"), answer_value("3 hours and 20 minutes")
    (Fraction(3, 4), None)
    """
    try:
        parsed = _plain_value(answer)
    except (ExpressionError, LimitExceededError):
        return None
    return parsed[0] if parsed is not None else None


def answers_match(predicted: str | None, gold: str | None) -> bool | None:
    """Do two final answers mean the same value? None when either cannot be read.

    Exact for numbers (``"1,200" == "1200.0"``, ``"3/4" == "0.75"``, ``"\\frac{1}{2}"``);
    a percentage also matches its number (``"25%"`` and ``"25"``). Anything else goes to
    Math-Verify.

    >>> answers_match("$1,200.00", "1200")
    True
    >>> answers_match(r"\\frac{3}{4}", "0.75"), answers_match("7", "8")
    (True, False)
    """
    if predicted is None or gold is None or not predicted.strip() or not gold.strip():
        return None
    try:
        a, b = _plain_value(predicted), _plain_value(gold)
    except LimitExceededError:
        return None  # 9^9^9: not something to hand to sympy either
    except ExpressionError:
        a = b = None
    if a is not None and b is not None:
        (va, pa), (vb, pb) = a, b
        if va == vb:
            return True
        if pa != pb:  # 25% against 25
            return (va * 100 == vb) if pa else (vb * 100 == va)
        return False
    return _math_verify(gold, predicted)
