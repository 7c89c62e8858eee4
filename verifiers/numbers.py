"""Compare a computed value with a number as written, and write a value the way a number was written.

"A rounded decimal is correct when it rounds as written": ``10/3 = 3.33`` and
``10/3 = 3.3`` are correct, ``10/3 = 3.4`` is wrong. An integer written after ``=``
must be exact (``7/2 = 3`` is wrong); after ``≈`` (or "= about") it may be rounded too.
Digits followed by "..." (``16.66...``) may be cut rather than rounded.
A percentage may be meant as a fraction (``20/80 = 25%``) or as the number of
percent (``0.25 × 100 = 25%``); both readings are accepted.
"""

from __future__ import annotations

from fractions import Fraction

from verifiers.lexer import Token

_MAX_EXACT_DECIMALS = 6


def _close(value: Fraction, stated: Fraction, decimals: int, rounding: bool, truncated: bool = False) -> str | None:
    if value == stated:
        return "exact"
    if rounding and abs(value - stated) * 2 * 10**decimals <= 1:
        return "rounded"
    if truncated and 0 <= (abs(value) - abs(stated)) * 10**decimals < 1 and (value < 0) == (stated < 0):
        return "truncated"
    return None


def match_stated(value: Fraction, tok: Token, sign: int = 1, *, approx: bool = False) -> str | None:
    """How ``value`` matches the written number ``tok`` ("exact", "rounded", "percent"), or None.

    >>> from verifiers.lexer import tokenize
    >>> match_stated(Fraction(10, 3), tokenize("3.33")[0])
    'rounded'
    >>> match_stated(Fraction(10, 3), tokenize("3.4")[0]) is None
    True
    """
    if tok.value is None:
        return None
    stated = tok.value * sign
    decimals = tok.decimals
    if tok.percent:
        number = stated * 100  # the number of percent as written
        how = _close(value * 100, number, decimals, True, tok.truncated)
        if how:
            return how
        return "percent" if _close(value, number, decimals, decimals > 0 or approx, tok.truncated) else None
    return _close(value, stated, decimals, decimals > 0 or approx, tok.truncated)


def _group(digits: str, sep: str) -> str:
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i : i + 3] for i in range(head, len(digits), 3)]
    return sep.join(parts)


def format_decimal(value: Fraction, min_decimals: int = 0, grouped: str = "") -> str:
    """Write ``value`` as a decimal: exact when it terminates within 6 places, else rounded
    to ``max(min_decimals, 2)`` places; padded to ``min_decimals``.

    >>> format_decimal(Fraction(195000), grouped=",")
    '195,000'
    >>> format_decimal(Fraction(10, 3)), format_decimal(Fraction(9, 2), 2)
    ('3.33', '4.50')
    """
    sign = "-" if value < 0 else ""
    value = abs(value)
    places = None
    for k in range(_MAX_EXACT_DECIMALS + 1):
        if (value * 10**k).denominator == 1:
            places = max(k, min_decimals)
            break
    if places is None:
        places = max(min_decimals, 2)
    scaled = value * 10**places
    units = int(scaled) + (1 if scaled - int(scaled) >= Fraction(1, 2) else 0)  # half up
    whole, frac = divmod(units, 10**places)
    text = _group(str(whole), grouped) if grouped else str(whole)
    if places:
        text += "." + str(frac).rjust(places, "0")
    return sign + text


def format_like(value: Fraction, tok: Token, *, percent_number: bool = False) -> str:
    """Write ``value`` in the style of the written number ``tok`` (digits only: its currency
    symbol and percent sign stay in the text around). ``percent_number``: ``tok`` is a
    percentage read as a plain number (``× 100 = 25%``)."""
    if tok.percent and not percent_number:
        value = value * 100
    if tok.mixed and value.denominator != 1 and abs(value) > 1:
        whole = int(value)
        rest = abs(value - whole)
        return f"{whole} {rest.numerator}/{rest.denominator}"
    return format_decimal(value, tok.decimals, tok.grouped)
