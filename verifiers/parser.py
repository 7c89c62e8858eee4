"""Safe arithmetic parser: tokens -> small AST -> exact value, with caps.

Recursive descent over a whitelist (numbers, ``+ - * / ^``, parentheses, braces,
``\\frac{a}{b}``, implicit multiplication before a parenthesis). Nothing is ever passed
to ``eval``, ``sympify`` or ``parse_expr``.

Values are exact. The hot path evaluates with ``fractions.Fraction`` (fast, no sympy
import); ``Expr.to_sympy()`` builds the same value as an exact sympy expression for
callers that want one. Caps keep every input cheap: nesting depth, digits per number
(in the lexer), the size of a power (checked *before* computing it) and the size of
every intermediate result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from verifiers.errors import ExpressionError, LimitExceededError
from verifiers.lexer import BREAK, FRAC, LB, LP, NUM, OP, RB, RP, Token, tokenize

MAX_DEPTH = 64  # nested parentheses, unary signs and powers
MAX_EXPONENT = 10_000  # |n| in a ** n
MAX_BITS = 8_192  # numerator and denominator of any intermediate value (~2,466 digits)
MAX_EXPRESSION_CHARS = 2_000  # parse_expression refuses longer text

_EMPTY: Mapping[int, Fraction] = {}


def _sympy_module() -> Any:
    """sympy, imported only when ``to_sympy`` is used (it is slow to import)."""
    import sympy  # type: ignore[import-untyped]

    return sympy


def _checked(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > MAX_BITS or value.denominator.bit_length() > MAX_BITS:
        raise LimitExceededError("intermediate value is too large")
    return value


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise ExpressionError("non-integer exponent")
    n = exponent.numerator
    if base == 0:
        if n < 0:
            raise ExpressionError("division by zero")
        return Fraction(1) if n == 0 else Fraction(0)
    if base in (1, -1):
        return base**n
    if abs(n) > MAX_EXPONENT:
        raise LimitExceededError(f"exponent {n} is over the cap of {MAX_EXPONENT}")
    bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if bits * abs(n) > MAX_BITS:
        raise LimitExceededError("power is too large")
    return base**n


class Expr:
    """A parsed arithmetic expression."""

    __slots__ = ()

    def evaluate(self, overrides: Mapping[int, Fraction] = _EMPTY, *, scaled: bool = False) -> Fraction:
        """Exact value. ``overrides`` maps a number's token index to a replacement value
        (used to carry a corrected result down a chain); ``scaled`` applies words like
        "dozen" or "million" written after a number."""
        raise NotImplementedError

    def to_sympy(self) -> Any:
        """The same value as an exact sympy expression (rationals, no floats).

        >>> parse_expression(r"\\frac{3}{4} + 1/4").to_sympy()
        1
        """
        self.evaluate()  # enforces the caps before sympy sees anything
        return self._sympy(_sympy_module())

    def _sympy(self, sp: Any) -> Any:
        raise NotImplementedError

    @property
    def is_number(self) -> bool:
        """A lone number, possibly signed (``-5``, ``$12``, ``25%``)."""
        return False

    def leading(self) -> Num | None:
        """The first number as written (``5`` in ``5 + 4``), for running chains."""
        return None

    def numbers(self) -> list[Num]:
        """Every number in the expression, left to right."""
        return []


@dataclass(frozen=True, slots=True)
class Num(Expr):
    value: Fraction
    index: int  # position of the NUM token in the token list it was parsed from
    scale: int = 1

    def evaluate(self, overrides: Mapping[int, Fraction] = _EMPTY, *, scaled: bool = False) -> Fraction:
        value = overrides.get(self.index, self.value)
        return value * self.scale if scaled and self.scale != 1 else value

    def _sympy(self, sp: Any) -> Any:
        return sp.Rational(self.value.numerator, self.value.denominator)

    @property
    def is_number(self) -> bool:
        return True

    def leading(self) -> Num | None:
        return self

    def numbers(self) -> list[Num]:
        return [self]


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    operand: Expr

    def evaluate(self, overrides: Mapping[int, Fraction] = _EMPTY, *, scaled: bool = False) -> Fraction:
        return -self.operand.evaluate(overrides, scaled=scaled)

    def _sympy(self, sp: Any) -> Any:
        return sp.Mul(sp.Integer(-1), self.operand._sympy(sp))

    @property
    def is_number(self) -> bool:
        return isinstance(self.operand, Num)

    def leading(self) -> Num | None:
        return self.operand.leading()

    def numbers(self) -> list[Num]:
        return self.operand.numbers()


@dataclass(frozen=True, slots=True)
class BinOp(Expr):
    op: str  # "+", "-", "*", "/", "//" (floor), "^"
    left: Expr
    right: Expr

    def evaluate(self, overrides: Mapping[int, Fraction] = _EMPTY, *, scaled: bool = False) -> Fraction:
        a = self.left.evaluate(overrides, scaled=scaled)
        b = self.right.evaluate(overrides, scaled=scaled)
        op = self.op
        if op == "+":
            return _checked(a + b)
        if op == "-":
            return _checked(a - b)
        if op == "*":
            return _checked(a * b)
        if op == "/" or op == "//":
            if b == 0:
                raise ExpressionError("division by zero")
            return _checked(a / b) if op == "/" else Fraction(a // b)
        return _power(a, b)

    def _sympy(self, sp: Any) -> Any:
        sympy = sp
        a, b = self.left._sympy(sp), self.right._sympy(sp)
        if self.op == "+":
            return sympy.Add(a, b)
        if self.op == "-":
            return sympy.Add(a, sympy.Mul(sympy.Integer(-1), b))
        if self.op == "*":
            return sympy.Mul(a, b)
        if self.op == "/":
            return sympy.Mul(a, sympy.Pow(b, sympy.Integer(-1)))
        if self.op == "//":
            return sympy.floor(sympy.Mul(a, sympy.Pow(b, sympy.Integer(-1))))
        return sympy.Pow(a, b)

    @property
    def is_fraction_literal(self) -> bool:
        """``3/4`` or ``\\frac{3}{4}`` with integer parts: a way of writing a number."""
        return (
            self.op == "/"
            and isinstance(self.left, Num)
            and isinstance(self.right, Num)
            and self.left.value.denominator == 1
            and self.right.value.denominator == 1
        )

    def leading(self) -> Num | None:
        return self.left.leading()

    def numbers(self) -> list[Num]:
        return self.left.numbers() + self.right.numbers()


class _Parser:
    """Recursive descent; ``tokens`` holds only expression tokens (units already removed)."""

    __slots__ = ("depth", "i", "indices", "tokens")

    def __init__(self, tokens: Sequence[Token], indices: Sequence[int]) -> None:
        self.tokens = tokens
        self.indices = indices  # index of each token in the caller's list, for Num.index
        self.i = 0
        self.depth = 0

    def _peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise LimitExceededError(f"nesting deeper than {MAX_DEPTH}")

    def parse(self) -> Expr:
        if not self.tokens:
            raise ExpressionError("empty expression")
        expr = self._sum()
        tok = self._peek()
        if tok is not None:
            raise ExpressionError(f"unexpected {tok.text!r}")
        return expr

    def _sum(self) -> Expr:
        left = self._product()
        while (tok := self._peek()) is not None and tok.kind == OP and tok.op in "+-":
            self.i += 1
            left = BinOp(tok.op, left, self._product())
        return left

    def _product(self) -> Expr:
        left = self._unary()
        while (tok := self._peek()) is not None:
            if tok.kind == OP and tok.op in ("*", "/", "//"):
                self.i += 1
                tight = self._tight_fraction() if tok.op == "/" else None
                left = BinOp(tok.op, left, tight if tight is not None else self._unary())
            elif tok.kind in (LP, FRAC) or (tok.kind == NUM and self.tokens[self.i - 1].kind == RP):
                # 2(3 + 4), (1/2) 1956, 3\frac{1}{2} when not a mixed number
                left = BinOp("*", left, self._power())
            else:
                break
        return left

    def _tight_fraction(self) -> Expr | None:
        """``3 / 1/4`` is 3 ÷ ¼: after a spaced "/", a fraction written without spaces is one number."""
        t, i = self.tokens, self.i
        if i + 2 >= len(t) or not (t[i - 1].space_before or t[i].space_before):
            return None
        num, slash, den = t[i], t[i + 1], t[i + 2]
        if not (
            num.kind == NUM
            and slash.kind == OP
            and slash.op == "/"
            and den.kind == NUM
            and not slash.space_before
            and not den.space_before
            and num.value is not None
            and den.value is not None
        ):
            return None
        if i + 3 < len(t) and t[i + 3].kind == OP and t[i + 3].op == "^":
            return None
        self.i += 3
        return BinOp("/", Num(num.value, self.indices[i], num.scale), Num(den.value, self.indices[i + 2], den.scale))

    def _unary(self) -> Expr:
        tok = self._peek()
        if tok is not None and tok.kind == OP and tok.op in "+-":
            self.i += 1
            self._deeper()
            operand = self._unary()
            self.depth -= 1
            return Neg(operand) if tok.op == "-" else operand
        return self._power()

    def _power(self) -> Expr:
        base = self._atom()
        tok = self._peek()
        if tok is not None and tok.kind == OP and tok.op == "^":
            self.i += 1
            self._deeper()
            exponent = self._unary()  # right-associative: 2^3^2 = 2^(3^2)
            self.depth -= 1
            return BinOp("^", base, exponent)
        return base

    def _expect(self, kind: str) -> None:
        tok = self._peek()
        if tok is None or tok.kind != kind:
            raise ExpressionError(f"expected {kind}, found {tok.text if tok else 'end'!r}")
        self.i += 1

    def _group(self, close: str) -> Expr:
        self._deeper()
        inner = self._sum()
        self._expect(close)
        self.depth -= 1
        return inner

    def _atom(self) -> Expr:
        tok = self._peek()
        if tok is None:
            raise ExpressionError("expression ends too early")
        self.i += 1
        if tok.kind == NUM:
            if tok.value is None:
                raise LimitExceededError(tok.error or "number over a cap")
            mixed = self._latex_mixed(tok)
            if mixed is not None:
                return Num(mixed, self.indices[self.i - 8], 1)
            return Num(tok.value, self.indices[self.i - 1], tok.scale)
        if tok.kind == LP:
            return self._group(RP)
        if tok.kind == LB:
            return self._group(RB)
        if tok.kind == FRAC:
            self._expect(LB)
            numerator = self._group(RB)
            self._expect(LB)
            denominator = self._group(RB)
            return BinOp("/", numerator, denominator)
        raise ExpressionError(f"unexpected {tok.text!r}")

    def _latex_mixed(self, tok: Token) -> Fraction | None:
        """``3\\frac{1}{2}``: an integer right before a proper numeric fraction is 3½."""
        t, i = self.tokens, self.i
        if not tok.is_integer_literal or i + 7 > len(t):
            return None
        if [x.kind for x in t[i : i + 7]] != [FRAC, LB, NUM, RB, LB, NUM, RB]:
            return None
        num, den = t[i + 2], t[i + 5]
        if not (num.is_integer_literal and den.is_integer_literal and num.value is not None):
            return None
        assert tok.value is not None and den.value is not None
        if not 0 < num.value < den.value:
            return None
        self.i += 7
        return tok.value + num.value / den.value


def parse_tokens(tokens: Sequence[Token], indices: Sequence[int] | None = None) -> Expr:
    """Parse expression tokens (no words) into an ``Expr``; raises ``ExpressionError``."""
    return _Parser(tokens, indices if indices is not None else range(len(tokens))).parse()


def parse_expression(text: str) -> Expr:
    """Parse one arithmetic expression written in plain text or LaTeX.

    Raises ``ExpressionError`` (``LimitExceededError`` for the caps) on anything else.

    >>> parse_expression(r"\\left(3 + 1\\right) \\times \\$2").evaluate()
    Fraction(8, 1)
    >>> parse_expression("2 ** 3 ** 2").evaluate()
    Fraction(512, 1)
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise LimitExceededError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    tokens = [t for t in tokenize(text) if t.kind != BREAK or t.text not in ("\\(", "\\)", "\\[", "\\]", "$$")]
    for tok in tokens:
        if tok.kind not in (NUM, OP, LP, RP, LB, RB, FRAC):
            raise ExpressionError(tok.error or f"unsupported {tok.text!r}")
    return parse_tokens(tokens)


def evaluate(text: str) -> Fraction:
    """Exact value of an arithmetic expression; raises ``ExpressionError`` when it has none.

    >>> evaluate("1 1/2 + 25% of 2".replace(" of ", " * "))
    Fraction(2, 1)
    >>> evaluate("9**9**9**9")
    Traceback (most recent call last):
    ...
    verifiers.errors.LimitExceededError: exponent 387420489 is over the cap of 10000
    """
    return parse_expression(text).evaluate()
