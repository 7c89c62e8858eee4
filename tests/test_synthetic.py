"""The synthetic word-problem generator: determinism, tiers, exact answers, checkable solutions."""

from __future__ import annotations

import json
import operator
from fractions import Fraction
from pathlib import Path

import pytest

from orchestrator.errors import InputError
from orchestrator.synthetic import TEMPLATES, generate_problems, main, write_jsonl

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
N = 240  # enough draws to visit every template of every tier several times


@pytest.fixture(scope="module")
def problems() -> list:
    return generate_problems(N, seed=7)


def test_same_seed_same_problems_other_seed_differs() -> None:
    a, b = generate_problems(30, seed=11), generate_problems(30, seed=11)
    assert a == b
    assert [p.question for p in generate_problems(30, seed=12)] != [p.question for p in a]


def test_prefix_stable_and_no_duplicates(problems: list) -> None:
    assert generate_problems(20, seed=7) == problems[:20]  # asking for fewer gives the same first ones
    assert len({p.question for p in problems}) == len(problems)
    assert len({p.id for p in problems}) == len(problems)


def test_tier_op_counts(problems: list) -> None:
    expected = {1: {1}, 2: {2}, 3: {3}, 4: {4, 5}}
    for p in problems:
        assert len(p.ops) in expected[p.tier], (p.tier, p.solution)
    assert [p.tier for p in problems[:8]] == [1, 2, 3, 4, 1, 2, 3, 4]  # tiers taken in turn
    assert {p.tier for p in generate_problems(12, seed=0, tiers=[3])} == {3}
    assert any(len(p.ops) == 5 for p in problems)


def test_tier_three_uses_a_part_or_a_rate(problems: list) -> None:
    for p in problems:
        if p.tier == 3:
            # a p/q operand (fraction or percent) or a division (unit rate)
            assert any("/" in op.right or op.op == "/" for op in p.ops), p.solution


def test_answers_recomputed_exactly_from_ops(problems: list) -> None:
    for p in problems:
        results: list[Fraction] = []
        for op in p.ops:
            value = OPS[op.op](Fraction(op.left), Fraction(op.right))
            assert value == Fraction(op.result), (p.id, op)
            results.append(value)
        # each intermediate result feeds a later operation: one chain, no dangling steps
        for k, r in enumerate(results[:-1]):
            later = p.ops[k + 1 :]
            assert any(Fraction(o.left) == r or Fraction(o.right) == r for o in later), (p.id, p.solution)
        answer = Fraction(p.answer)
        assert answer == results[-1] and answer >= 0
        assert (answer * 100).denominator == 1  # an integer or whole cents
        assert answer.denominator == 1 or ("." in p.answer and len(p.answer.split(".")[1]) == 2)


def test_every_template_is_reached(problems: list) -> None:
    topics = {(p.tier, p.topic) for p in problems}
    assert len(topics) >= sum(len(v) for v in TEMPLATES.values()) - 6  # some share a topic name
    assert len({p.topic for p in problems}) >= 6


def test_operands_stay_small(problems: list) -> None:
    operands = [Fraction(x) for p in problems for op in p.ops for x in (op.left, op.right)]
    share_small = sum(abs(x) < 1000 for x in operands) / len(operands)
    assert share_small > 0.95


def test_solution_lines_pass_the_arithmetic_checker(problems: list) -> None:
    verifiers = pytest.importorskip("verifiers")
    check_step = getattr(verifiers, "check_step", None)
    if check_step is None:
        pytest.skip("verifiers.check_step not available")
    for p in problems:
        lines = p.solution.splitlines()
        assert len(lines) == len(p.ops)
        for line in lines:
            assert check_step(line).status == "correct", (p.id, line)


def test_write_jsonl_is_gsm8k_format(tmp_path: Path) -> None:
    ps = generate_problems(6, seed=2)
    path = write_jsonl(ps, tmp_path / "suite.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 6
    for row, p in zip(rows, ps, strict=True):
        assert row["question"] == p.question
        body, _, final = row["answer"].rpartition("\n#### ")
        assert final == p.answer and body == p.solution


def test_cli_main_writes_file(tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    assert main(["--n", "9", "--seed", "4", "--tiers", "1,4", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["tier"] for r in rows] == [1, 4, 1, 4, 1, 4, 1, 4, 1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},  # negative count
        {"n": 3, "tiers": []},  # no tier
        {"n": 3, "tiers": [5]},  # unknown tier
    ],
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(InputError):
        generate_problems(**kwargs)
