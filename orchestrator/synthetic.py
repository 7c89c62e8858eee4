"""Seeded synthetic arithmetic word problems, for examples, tests and quick evaluations.

Four tiers: 1 = one operation, 2 = two operations, 3 = three steps with a fraction, a percentage or a
unit rate, 4 = four or five operations. Every problem records its operations (``Op``), so its answer can
be recomputed exactly, and a reference solution with the arithmetic written out (``3 x 4 = 12``), one
operation a line, which the project's arithmetic checker reads. Answers are non-negative integers, or
dollar amounts with cents. The same seed gives the same problems; a set holds no duplicate questions.

``write_jsonl`` writes GSM8K's format (``question``, ``answer`` = solution lines + ``"\\n#### N"``), so an
evaluation reads a synthetic suite as it reads GSM8K.

>>> p = generate_problems(1, seed=3, tiers=[1])[0]
>>> (p.tier, len(p.ops))
(1, 1)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from random import Random

from orchestrator.errors import InputError

TIERS = (1, 2, 3, 4)
_SYMBOL = {"+": "+", "-": "-", "*": "x", "/": "/"}


@dataclass(frozen=True)
class Op:
    """One operation of a solution: ``left op right = result``, numbers as exact decimal or ``p/q`` strings."""

    left: str
    op: str  # one of + - * /
    right: str
    result: str


@dataclass(frozen=True)
class Problem:
    """A word problem with its answer and a reference solution."""

    id: str
    tier: int
    question: str
    answer: str  # an integer ("12") or a dollar amount with cents ("13.50")
    solution: str  # one line per operation, arithmetic written out ("Cost: 3 x $4.50 = $13.50.")
    ops: list[Op] = field(default_factory=list)
    topic: str = ""


# ------------------------------------------------------------------------------------------------ numbers


def _plain(x: Fraction) -> str:
    """Exact decimal text of a value with at most two decimals (all generated values are)."""
    if x.denominator == 1:
        return str(x.numerator)
    cents = x * 100
    if cents.denominator != 1:
        raise ValueError(f"{x} is not a whole number of hundredths")
    whole, rest = divmod(int(cents), 100)
    return f"{whole}.{rest:02d}"


def _text(x: Fraction, money: bool) -> str:
    return f"${_plain(x)}" if money else _plain(x)


class _Work:
    """Records operations and solution lines while a template computes its answer."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lines: list[str] = []

    def step(
        self, label: str, a: Fraction | int, op: str, b: Fraction | int, *, money: str = "", unit: str = ""
    ) -> Fraction:
        """``a op b``; ``money`` names which of a, b, r (result) are dollars; ``unit`` follows the result."""
        a, b = Fraction(a), Fraction(b)
        r = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else Fraction(-1)}[op]
        if r < 0 or (op == "/" and r.denominator != 1 and "r" not in money):
            raise _Retry
        if (r * 100).denominator != 1:
            raise _Retry
        expr = f"{_text(a, 'a' in money)} {_SYMBOL[op]} {_text(b, 'b' in money)} = {_text(r, 'r' in money)}"
        self.lines.append(f"{label}: {expr}{' ' + unit if unit else ''}.")
        self.ops.append(Op(_plain(a), op, _plain(b), _plain(r)))
        return r

    def part(self, label: str, num: int, den: int, base: Fraction | int, *, money: bool = False, unit: str = "",
             percent: bool = False) -> Fraction:  # fmt: skip
        """``num/den of base`` (or ``num% of base``), one operation: ``base * num/den``."""
        base = Fraction(base)
        r = base * num / den
        if r.denominator != 1 and not (money and (r * 100).denominator == 1):
            raise _Retry
        b, v = _text(base, money), _text(r, money)
        head = f"{num}% of {b}" if percent else f"{num}/{den} of {b}"
        self.lines.append(f"{label}: {head} = {b} x {num} / {den} = {v}{' ' + unit if unit else ''}.")
        self.ops.append(Op(_plain(base), "*", f"{num}/{den}", _plain(r)))
        return r


class _Retry(Exception):
    """The drawn numbers do not give a clean answer: draw again."""


# ---------------------------------------------------------------------------------------------- vocabulary

NAMES = ("Mia", "Liam", "Ava", "Noah", "Zoe", "Omar", "Priya", "Lucas", "Elena", "Kenji", "Sara", "Diego",
         "Amara", "Ben", "Chloe", "Ravi", "Hana", "Tom", "Nadia", "Felix")  # fmt: skip
ITEMS = (("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("sticker pack", "sticker packs"),
         ("comic book", "comic books"), ("bag of rice", "bags of rice"), ("candle", "candles"),
         ("box of crayons", "boxes of crayons"), ("mug", "mugs"), ("plant pot", "plant pots"))  # fmt: skip
BAKED = ("cookies", "muffins", "cupcakes", "rolls", "brownies", "pancakes")
THINGS = ("marbles", "stickers", "shells", "stamps", "cards", "beads", "coins", "books")
VEHICLES = (("car", "drives"), ("bus", "travels"), ("train", "travels"), ("cyclist", "rides"),
            ("truck", "drives"))  # fmt: skip
DISTANCE = ("km", "miles")
PRICES = (Fraction(1), Fraction(2), Fraction(3), Fraction(5), Fraction(6), Fraction(8), Fraction(12),
          Fraction(5, 4), Fraction(3, 2), Fraction(5, 2), Fraction(15, 4), Fraction(9, 2))  # fmt: skip
BILLS = (10, 20, 50, 100)


def _name(rng: Random, *exclude: str) -> str:
    return rng.choice([n for n in NAMES if n not in exclude])


def _money(x: Fraction) -> str:
    return f"${_plain(x)}"


# --------------------------------------------------------------------------------------------- templates
# Each template draws numbers, builds the question and computes the answer through a _Work, which records
# the operations; it returns (topic, question) and raises _Retry when the numbers do not come out clean.

Template = Callable[[Random, _Work], tuple[str, str]]


def _t1_shopping(rng: Random, w: _Work) -> tuple[str, str]:
    name, (_, many), n, p = _name(rng), rng.choice(ITEMS), rng.randint(2, 12), rng.choice(PRICES)
    w.step(f"Cost of the {many}", n, "*", p, money="br")
    return "shopping", f"{name} buys {n} {many} at {_money(p)} each. How many dollars does {name} spend?"


def _t1_collect(rng: Random, w: _Work) -> tuple[str, str]:
    name, thing, a, b = _name(rng), rng.choice(THINGS), rng.randint(10, 250), rng.randint(5, 120)
    w.step(f"{thing.capitalize()} now", a, "+", b)
    return "collection", (
        f"{name} has {a} {thing}. A friend gives {name} {b} more. How many {thing} does {name} have now?"
    )


def _t1_give(rng: Random, w: _Work) -> tuple[str, str]:
    name = _name(rng)
    friend = _name(rng, name)
    thing, a = rng.choice(THINGS), rng.randint(20, 300)
    b = rng.randint(3, a - 1)
    w.step(f"{thing.capitalize()} left", a, "-", b)
    return "collection", (
        f"{name} had {a} {thing} and gave {b} of them to {friend}. How many {thing} does {name} have left?"
    )


def _t1_share(rng: Random, w: _Work) -> tuple[str, str]:
    k, each, thing = rng.randint(2, 9), rng.randint(3, 25), rng.choice(THINGS)
    w.step("Each child gets", k * each, "/", k, unit=thing)
    return "sharing", f"{k * each} {thing} are shared equally among {k} children. How many {thing} does each child get?"


def _t1_travel(rng: Random, w: _Work) -> tuple[str, str]:
    (vehicle, verb), unit = rng.choice(VEHICLES), rng.choice(DISTANCE)
    s, h = rng.randint(2, 12) * 5, rng.randint(2, 6)
    w.step("Distance", s, "*", h, unit=unit)
    return "travel", f"A {vehicle} {verb} at {s} {unit} per hour for {h} hours. How many {unit} does it cover?"


def _t1_classroom(rng: Random, w: _Work) -> tuple[str, str]:
    rows, per = rng.randint(3, 9), rng.randint(4, 8)
    w.step("Desks", rows, "*", per, unit="desks")
    return "classroom", f"A classroom has {rows} rows of desks with {per} desks in each row. How many desks are there?"


def _t2_change(rng: Random, w: _Work) -> tuple[str, str]:
    name, (_, many), n, p = _name(rng), rng.choice(ITEMS), rng.randint(2, 8), rng.choice(PRICES)
    cost = n * p
    bill = next((b for b in BILLS if b >= cost), None)
    if bill is None:
        raise _Retry
    cost = w.step(f"Cost of the {many}", n, "*", p, money="br")
    w.step("Change", bill, "-", cost, money="abr")
    return "shopping", (f"{name} buys {n} {many} for {_money(p)} each and pays with a {_money(Fraction(bill))} bill. "
                        "How much change, in dollars, does " + name + " get?")  # fmt: skip


def _t2_savings(rng: Random, w: _Work) -> tuple[str, str]:
    name, a, weeks = _name(rng), rng.randint(2, 20) * 5, rng.randint(3, 10)
    spend = rng.randint(1, a * weeks // 10) * 5
    total = w.step("Saved", a, "*", weeks, money="abr")
    w.step("Left", total, "-", spend, money="abr")
    return "savings", (f"{name} saves {_money(Fraction(a))} every week for {weeks} weeks, then spends "
                       f"{_money(Fraction(spend))} on a gift. How many dollars does {name} have left?")  # fmt: skip


def _t2_baking(rng: Random, w: _Work) -> tuple[str, str]:
    name, food, trays, per = _name(rng), rng.choice(BAKED), rng.randint(2, 6), rng.randint(6, 24)
    eaten = rng.randint(1, trays * per - 1)
    total = w.step(f"{food.capitalize()} baked", trays, "*", per)
    w.step(f"{food.capitalize()} left", total, "-", eaten)
    return "baking", (f"{name} bakes {trays} trays of {food} with {per} {food} on each tray. The family eats "
                      f"{eaten} of them. How many {food} are left?")  # fmt: skip


def _t2_two_legs(rng: Random, w: _Work) -> tuple[str, str]:
    name, unit = _name(rng), rng.choice(DISTANCE)
    s, h, more = rng.randint(6, 16) * 5, rng.randint(2, 5), rng.randint(10, 90)
    first = w.step("First part", s, "*", h, unit=unit)
    w.step("Whole trip", first, "+", more, unit=unit)
    return "travel", (f"{name} drives at {s} {unit} per hour for {h} hours, then drives {more} {unit} more. "
                      f"How many {unit} does {name} drive in all?")  # fmt: skip


def _t2_groups(rng: Random, w: _Work) -> tuple[str, str]:
    g = rng.randint(3, 6)
    total = g * rng.randint(4, 10)
    boys = rng.randint(5, total - 5)
    pupils = w.step("Students", boys, "+", total - boys)
    w.step("Groups", pupils, "/", g)
    return "classroom", (f"A class has {boys} boys and {total - boys} girls. The teacher splits them into groups "
                         f"of {g}. How many groups are there?")  # fmt: skip


def _t3_discount(rng: Random, w: _Work) -> tuple[str, str]:
    name, price, pct, n = _name(rng), rng.randint(2, 30) * 5, rng.choice((10, 20, 25, 30, 40, 50)), rng.randint(2, 4)
    item = rng.choice(("jacket", "pair of shoes", "backpack", "lamp", "board game"))
    off = w.part("Discount", pct, 100, price, money=True, percent=True)
    each = w.step("Sale price", price, "-", off, money="abr")
    w.step("Total", each, "*", n, money="ar")
    return "shopping", (f"A {item} costs {_money(Fraction(price))}. The store takes {pct}% off the price. "
                        f"{name} buys {n} of them. How many dollars does {name} pay?")  # fmt: skip


def _t3_fraction_eaten(rng: Random, w: _Work) -> tuple[str, str]:
    name, food = _name(rng), rng.choice(BAKED)
    num, den = rng.choice(((1, 2), (1, 3), (2, 3), (1, 4), (3, 4)))
    trays, per = rng.randint(2, 6), rng.randint(3, 8) * den
    total = w.step(f"{food.capitalize()} baked", trays, "*", per)
    sold = w.part(f"{food.capitalize()} sold", num, den, total)
    w.step(f"{food.capitalize()} left", total, "-", sold)
    return "baking", (f"{name} bakes {trays} trays with {per} {food} each and sells {num}/{den} of them at a "
                      f"bake sale. How many {food} are left?")  # fmt: skip


def _t3_unit_price(rng: Random, w: _Work) -> tuple[str, str]:
    name, (one, many) = _name(rng), rng.choice(ITEMS)
    k, unit_price, m, extra = rng.randint(2, 6), rng.choice(PRICES), rng.randint(5, 12), rng.randint(2, 9)
    each = w.step(f"Price of one {one}", k * unit_price, "/", k, money="abr")
    cost = w.step(f"Cost of {m} {many}", m, "*", each, money="br")
    w.step("Total", cost, "+", extra, money="abr")
    return "shopping", (f"{k} {many} cost {_money(k * unit_price)}. {name} buys {m} {many} at the same price and "
                        f"a {_money(Fraction(extra))} gift bag. How many dollars does {name} spend?")  # fmt: skip


def _t3_rate(rng: Random, w: _Work) -> tuple[str, str]:
    (vehicle, verb), unit = rng.choice(VEHICLES), rng.choice(DISTANCE)
    speed, h = rng.randint(4, 15) * 5, rng.randint(2, 4)
    h2 = h + rng.randint(1, 4)
    per_hour = w.step("Speed", speed * h, "/", h, unit=f"{unit} per hour")
    far = w.step(f"Distance in {h2} hours", per_hour, "*", h2, unit=unit)
    w.step("Difference", far, "-", speed * h, unit=unit)
    return "travel", (f"A {vehicle} {verb} {speed * h} {unit} in {h} hours. At the same speed, how many more {unit} "
                      f"does it cover in {h2} hours than in {h} hours?")  # fmt: skip


def _t3_walkers(rng: Random, w: _Work) -> tuple[str, str]:
    pct = rng.choice((10, 20, 25, 40, 50, 60, 75))
    n = rng.randint(2, 8) * 20
    fee = rng.randint(1, 4)
    walk = w.part("Students who walk", pct, 100, n, percent=True)
    bus = w.step("Students on the bus", n, "-", walk)
    w.step("Bus fares", bus, "*", fee, money="br")
    return "classroom", (f"A school has {n} students. {pct}% of them walk to school and the rest take the bus, "
                         f"which costs {_money(Fraction(fee))} per student. How many dollars do the bus riders pay "
                         "in total?")  # fmt: skip


def _t4_two_items(rng: Random, w: _Work) -> tuple[str, str]:
    name = _name(rng)
    (_, many1), (_, many2) = rng.sample(ITEMS, 2)
    n1, n2, p1, p2 = rng.randint(2, 5), rng.randint(2, 5), rng.choice(PRICES), rng.choice(PRICES)
    bill = next((b for b in BILLS if b >= n1 * p1 + n2 * p2), None)
    if bill is None:
        raise _Retry
    c1 = w.step(f"Cost of the {many1}", n1, "*", p1, money="br")
    c2 = w.step(f"Cost of the {many2}", n2, "*", p2, money="br")
    total = w.step("Total", c1, "+", c2, money="abr")
    w.step("Change", bill, "-", total, money="abr")
    return "shopping", (f"{name} buys {n1} {many1} at {_money(p1)} each and {n2} {many2} at {_money(p2)} each, "
                        f"and pays with a {_money(Fraction(bill))} bill. How much change, in dollars, does {name} "
                        "get?")  # fmt: skip


def _t4_bake_sale(rng: Random, w: _Work) -> tuple[str, str]:
    name, food = _name(rng), rng.choice(BAKED)
    trays, per, keep, price = rng.randint(2, 5), rng.randint(6, 12), rng.randint(2, 8), rng.randint(1, 3)
    cost = rng.randint(1, max(1, ((trays * per - keep) * price) // 2))
    total = w.step(f"{food.capitalize()} baked", trays, "*", per)
    sold = w.step(f"{food.capitalize()} sold", total, "-", keep)
    income = w.step("Money from sales", sold, "*", price, money="br")
    w.step("Profit", income, "-", cost, money="abr")
    return "baking", (f"{name} bakes {trays} trays of {per} {food}, keeps {keep} for the family and sells the rest "
                      f"for {_money(Fraction(price))} each. The ingredients cost {_money(Fraction(cost))}. "
                      f"How many dollars of profit does {name} make?")  # fmt: skip


def _t4_fuel(rng: Random, w: _Work) -> tuple[str, str]:
    name, unit = _name(rng), rng.choice(DISTANCE)
    per_litre = rng.choice((5, 10, 15, 20))
    s1, h1, s2 = rng.randint(6, 14) * 5, rng.randint(1, 4), rng.randint(6, 14) * 5
    h2 = rng.randint(1, 4)
    if (s1 * h1 + s2 * h2) % per_litre:
        raise _Retry
    d1 = w.step("First part", s1, "*", h1, unit=unit)
    d2 = w.step("Second part", s2, "*", h2, unit=unit)
    d = w.step("Whole trip", d1, "+", d2, unit=unit)
    w.step("Fuel", d, "/", per_litre, unit="litres")
    return "travel", (f"{name} drives {s1} {unit} per hour for {h1} hours and then {s2} {unit} per hour for {h2} "
                      f"hours. The car goes {per_litre} {unit} on one litre of fuel. How many litres does the trip "
                      "use?")  # fmt: skip


def _t4_pencils(rng: Random, w: _Work) -> tuple[str, str]:
    classes, students, each, box = rng.randint(2, 5), rng.randint(18, 30), rng.randint(2, 4), rng.choice((10, 12, 20))
    pupils = classes * students
    extra = (-pupils * each) % box + box * rng.randint(0, 2)
    if extra == 0:
        extra = box
    kids = w.step("Students", classes, "*", students)
    pencils = w.step("Pencils for students", kids, "*", each)
    total = w.step("All pencils", pencils, "+", extra)
    w.step("Boxes", total, "/", box)
    return "classroom", (f"A school has {classes} classes with {students} students in each. Every student gets "
                         f"{each} pencils, and the teachers need {extra} more. Pencils come in boxes of {box}. "
                         "How many boxes does the school need?")  # fmt: skip


def _t4_savings_plan(rng: Random, w: _Work) -> tuple[str, str]:
    name, wage, weeks = _name(rng), rng.randint(4, 20) * 5, rng.randint(2, 8)
    pct = rng.choice((10, 20, 25, 50))
    item = rng.randint(1, 6) * 5
    earned = w.step("Earned", wage, "*", weeks, money="abr")
    spent = w.part("Spent on food", pct, 100, earned, money=True, percent=True)
    left = w.step("After food", earned, "-", spent, money="abr")
    w.step("Left", left, "-", item, money="abr")
    return "savings", (f"{name} earns {_money(Fraction(wage))} a week for {weeks} weeks, spends {pct}% of it on "
                       f"food and then buys a {_money(Fraction(item))} book. How many dollars does {name} have "
                       "left?")  # fmt: skip


def _t4_tickets(rng: Random, w: _Work) -> tuple[str, str]:
    name = _name(rng)
    adults, kids = rng.randint(1, 4), rng.randint(1, 5)
    pa, pk, coupon = rng.randint(6, 15), rng.randint(2, 8), rng.randint(1, 5)
    total = adults * pa + kids * pk - coupon
    bill = next((b for b in BILLS if b >= total), None)
    if bill is None or total <= 0:
        raise _Retry
    ca = w.step("Adult tickets", adults, "*", pa, money="br")
    ck = w.step("Child tickets", kids, "*", pk, money="br")
    both = w.step("Tickets", ca, "+", ck, money="abr")
    due = w.step("After the coupon", both, "-", coupon, money="abr")
    w.step("Change", bill, "-", due, money="abr")
    return "outing", (f"{name} takes {adults} adults and {kids} children to the zoo. Adult tickets cost "
                      f"{_money(Fraction(pa))} and child tickets {_money(Fraction(pk))}. A coupon takes "
                      f"{_money(Fraction(coupon))} off the total, and {name} pays with a {_money(Fraction(bill))} "
                      "bill. How much change, in dollars, does " + name + " get?")  # fmt: skip


TEMPLATES: dict[int, tuple[Template, ...]] = {
    1: (_t1_shopping, _t1_collect, _t1_give, _t1_share, _t1_travel, _t1_classroom),
    2: (_t2_change, _t2_savings, _t2_baking, _t2_two_legs, _t2_groups),
    3: (_t3_discount, _t3_fraction_eaten, _t3_unit_price, _t3_rate, _t3_walkers),
    4: (_t4_two_items, _t4_bake_sale, _t4_fuel, _t4_pencils, _t4_savings_plan, _t4_tickets),
}

_MAX_DRAWS = 200  # draws per problem before giving up (the number space is far larger than any set)


def generate_problems(n: int, *, seed: int = 0, tiers: Sequence[int] = TIERS) -> list[Problem]:
    """``n`` distinct problems, tiers taken in turn from ``tiers``, the same for the same seed.

    >>> [p.tier for p in generate_problems(5, seed=1, tiers=(1, 3))]
    [1, 3, 1, 3, 1]
    """
    if n < 0:
        raise InputError(f"n must be non-negative, got {n}")
    chosen = [int(t) for t in tiers]
    bad = [t for t in chosen if t not in TEMPLATES]
    if not chosen or bad:
        raise InputError(f"tiers must be a non-empty selection of {list(TIERS)}, got {list(tiers)}")
    rng = Random(seed)
    seen: set[str] = set()
    problems: list[Problem] = []
    for i in range(n):
        tier = chosen[i % len(chosen)]
        for _ in range(_MAX_DRAWS):
            template = rng.choice(TEMPLATES[tier])
            work = _Work()
            try:
                topic, question = template(rng, work)
            except _Retry:
                continue
            if question in seen:
                continue
            seen.add(question)
            answer = work.ops[-1].result
            problems.append(Problem(f"synth-{seed}-{i:04d}", tier, question, answer, "\n".join(work.lines),
                                    list(work.ops), topic))  # fmt: skip
            break
        else:
            raise InputError(f"could not draw {n} distinct tier-{tier} problems with seed {seed}")
    return problems


def to_gsm8k(problem: Problem) -> dict[str, object]:
    """One GSM8K-style record: ``question``, ``answer`` (solution + ``#### N``), plus our own fields."""
    record: dict[str, object] = {"question": problem.question, "answer": f"{problem.solution}\n#### {problem.answer}"}
    record.update(id=problem.id, tier=problem.tier, topic=problem.topic, ops=[asdict(op) for op in problem.ops])
    return record


def write_jsonl(problems: Sequence[Problem], path: str | Path) -> Path:
    """Write problems as GSM8K-format JSON lines; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(to_gsm8k(p), ensure_ascii=False) + "\n")
    return path


# ---------------------------------------------------------------------------------------------------- CLI


def _tier_list(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"tiers must be comma-separated integers, got {text!r}") from None


def add_synth_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``qslm synth``."""
    parser.add_argument("--n", type=int, default=60, help="how many problems (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--tiers", type=_tier_list, default=list(TIERS), help="comma-separated tiers (default 1,2,3,4)")
    parser.add_argument("--out", default="-", help="JSONL file to write ('-' or absent: stdout)")


def run_synth(args: argparse.Namespace) -> int:
    """Generate a suite and write it where ``args.out`` says."""
    problems = generate_problems(args.n, seed=args.seed, tiers=args.tiers)
    if args.out in ("-", "", None):
        for p in problems:
            sys.stdout.write(json.dumps(to_gsm8k(p), ensure_ascii=False) + "\n")
    else:
        path = write_jsonl(problems, args.out)
        print(f"wrote {len(problems)} problems to {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m orchestrator.synthetic --n 60 --seed 0 --out suite.jsonl``."""
    parser = argparse.ArgumentParser(prog="qslm synth", description="write a synthetic arithmetic word-problem suite")
    add_synth_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_synth(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
