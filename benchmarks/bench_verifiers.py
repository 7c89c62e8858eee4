"""Benchmark the arithmetic step checker on GSM8K reference steps and on real model outputs.

    python benchmarks/bench_verifiers.py --gsm8k PATH/gsm8k_train.jsonl \\
        --model-steps PATH/model_steps.jsonl docs/results/*/results.jsonl --out results.json

Reports (and writes as JSON):

- GSM8K: every step line of the reference solutions with its ``<<expr=result>>``
  annotation removed; the share judged "correct" among those with a claim; the same steps
  with the annotated result perturbed (+1, -1, x10, two digits swapped) judged "wrong";
  the share of steps where a claim was found at all.
- model steps: lines with a numeric ``=`` (a digit on both sides of an ``=``), the share
  that get a verdict other than "cannot judge", and every distinct line judged "wrong" with the
  correction it would get (read them: a wrong correction turns a right step wrong); the same
  lines with the last stated result perturbed judged "wrong" (over all such lines, and over the
  lines that got a verdict; a perturbation that turns a model's wrong result into the right one
  is left out).
- adversarial inputs and a fuzz run, each timed (the slowest case is reported).
- throughput: step checks per second on one core.

The data is read from the given paths and never copied.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from verifiers import check_step

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?|-?\.[0-9]+")
_NUMERIC_EQ_SPLIT = re.compile(r"=|≈|\\approx")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def perturbations(number: str) -> Iterator[tuple[str, str]]:
    """(kind, perturbed text) for a written number: +1, -1, x10, two adjacent digits swapped."""
    plain = number.replace(",", "")
    try:
        value = Decimal(plain)
    except ArithmeticError:
        return
    decimals = len(plain.partition(".")[2])
    for kind, new in (("+1", value + 1), ("-1", value - 1), ("x10", value * 10)):
        text = f"{new:.{decimals}f}"
        if Decimal(text) != value:
            yield kind, text
    digits = list(plain)
    for i in range(len(digits) - 1):
        a, b = digits[i], digits[i + 1]
        if a.isdigit() and b.isdigit() and a != b:
            digits[i], digits[i + 1] = b, a
            swapped = "".join(digits)
            if Decimal(swapped) != value:
                yield "swap", swapped
            break


def gsm8k_steps(records: list[dict[str, Any]]) -> Iterator[tuple[str, list[tuple[int, int]]]]:
    """(step with annotations removed, spans of the annotated results in it)."""
    for rec in records:
        for line in rec["answer"].split("\n"):
            if line.startswith("####") or not line.strip():
                continue
            out: list[str] = []
            results: list[tuple[int, int]] = []
            pos = 0
            length = 0
            for m in _ANNOTATION.finditer(line):
                out.append(line[pos : m.start()])
                length += m.start() - pos
                pos = m.end()
                stated = _NUMBER.match(line, pos)
                result = m.group(1).rpartition("=")[2].strip()
                if stated is not None and _same_number(stated.group(), result):
                    results.append((length, length + stated.end() - stated.start()))
            out.append(line[pos:])
            yield "".join(out), results


def _same_number(written: str, result: str) -> bool:
    try:
        return Decimal(written.replace(",", "")) == Decimal(result.replace(",", ""))
    except ArithmeticError:
        return False


def bench_gsm8k(path: Path, failures: int = 20) -> dict[str, Any]:
    steps = list(gsm8k_steps(read_jsonl(path)))
    with_claim = correct = 0
    statuses: Counter[str] = Counter()
    not_correct: list[str] = []
    perturbed = perturbed_wrong = 0
    by_kind: Counter[str] = Counter()
    by_kind_wrong: Counter[str] = Counter()
    missed: list[str] = []
    for text, results in steps:
        verdict = check_step(text)
        if not verdict.claims:
            continue
        with_claim += 1
        statuses[verdict.status] += 1
        if verdict.status == "correct":
            correct += 1
        elif len(not_correct) < failures:
            not_correct.append(text)
        for start, end in results:
            for kind, new in perturbations(text[start:end]):
                bad = text[:start] + new + text[end:]
                perturbed += 1
                by_kind[kind] += 1
                if check_step(bad).status == "wrong":
                    perturbed_wrong += 1
                    by_kind_wrong[kind] += 1
                elif len(missed) < failures:
                    missed.append(bad)
    return {
        "steps": len(steps),
        "steps_with_claim": with_claim,
        "claim_found_share": with_claim / len(steps),
        "correct_share": correct / with_claim,
        "statuses_of_steps_with_claim": dict(statuses),
        "perturbed_steps": perturbed,
        "perturbed_wrong_share": perturbed_wrong / perturbed,
        "perturbed_wrong_share_by_kind": {k: by_kind_wrong[k] / n for k, n in sorted(by_kind.items())},
        "examples_not_correct": not_correct,
        "examples_perturbed_not_wrong": missed,
    }


def has_numeric_eq(line: str) -> bool:
    """A digit on both sides of some ``=`` (between it and its neighbouring ``=``)."""
    parts = _NUMERIC_EQ_SPLIT.split(line)
    digit = [any(c in string.digits for c in p) for p in parts]
    return any(digit[i] and digit[i + 1] for i in range(len(parts) - 1))


def _last_result(line: str) -> tuple[int, int] | None:
    """Span of the number right after the last ``=`` that is followed by one."""
    best = None
    for m in re.finditer(r"(?:=|≈|\\approx)\s*(?:\\\$|\$)?\s*", line):
        num = _NUMBER.match(line, m.end())
        if num is not None:
            best = num.span()
    return best


def bench_model_steps(paths: list[Path]) -> dict[str, Any]:
    """Real model lines: how many get a verdict, which are judged wrong (each listed with the correction
    the orchestrator would make, to be read one by one: a wrong correction turns a right step wrong), and
    how many deliberately damaged results are caught."""
    lines = [
        line
        for path in paths
        for rec in read_jsonl(path)
        for line in str(rec.get("text") or "").split("\n")
        if has_numeric_eq(line)
    ]
    statuses: Counter[str] = Counter()
    unknown: list[str] = []
    judged_wrong: dict[str, str] = {}  # line -> its corrected text (distinct lines)
    judged = 0
    perturbed = perturbed_wrong = perturbed_judged = perturbed_judged_wrong = fixed = 0
    for line in lines:
        verdict = check_step(line)
        statuses[verdict.status] += 1
        if verdict.status != "unknown":
            judged += 1
        else:
            unknown.append(line)
        if verdict.status == "wrong":
            judged_wrong[line.strip()] = (verdict.corrected_text or "").strip()
        span = _last_result(line)
        if span is None:
            continue
        for _kind, new in perturbations(line[span[0] : span[1]]):
            bad = line[: span[0]] + new + line[span[1] :]
            status = check_step(bad).status
            if verdict.status == "wrong" and status == "correct":
                fixed += 1  # the perturbation turned the model's slip into the right value
                continue
            wrong = status == "wrong"
            perturbed += 1
            perturbed_wrong += wrong
            if verdict.status != "unknown":
                perturbed_judged += 1
                perturbed_judged_wrong += wrong
    return {
        "lines_with_numeric_eq": len(lines),
        "judged_share": judged / len(lines),
        "statuses": dict(statuses),
        "perturbed_lines": perturbed,
        "perturbed_wrong_share": perturbed_wrong / perturbed,
        "perturbed_wrong_share_of_judged_lines": perturbed_judged_wrong / max(perturbed_judged, 1),
        "perturbations_that_fixed_a_slip": fixed,
        "judged_wrong": [{"line": k, "corrected": v} for k, v in judged_wrong.items()],
        "examples_unknown": unknown,
    }


def adversarial_inputs() -> dict[str, str]:
    return {
        "9**9**9**9": "9**9**9**9 = 1",
        "10^10^10": "10^10^10 = 5",
        "5000-digit number": "1" * 5000 + " + 1 = 2",
        "10,000 nested parentheses": "(" * 10_000 + "1" + ")" * 10_000 + " = 1",
        "2,400 nested parentheses (under the length cap)": "(" * 2_400 + "1" + ")" * 2_400 + " = 1",
        "4,900-digit number (under the length cap)": "1" * 4_900 + " + 1 = 2",
        "1e308 * 1e308": "1e308 * 1e308 = 1e616",
        "Unicode digits": "١٢ + ٣ = ١٥ and ２ + ３ = ５",
        "__import__('os')": "__import__('os').system('echo hi') = 1 + 1 = 2",
        "1 MB of text": ("She walked 12 x 4 = 48 miles. " * 40_000)[:1_048_576],
        "nested \\frac (under the length cap)": "\\frac{" * 450 + "1" + "}{2}" * 450 + " = 1",
        "long chain (under the length cap)": " = ".join(["1 + 1"] * 600),
        "many claims (under the length cap)": "1 + 1 = 2, " * 450,
        "power tower in LaTeX": "2^{2^{2^{2^{2^{2}}}}} = 4",
        "many operators (under the length cap)": "1" + " + 1" * 1200 + " = 1201",
    }


def timed(fn: Callable[[str], Any], text: str) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(text)
    return time.perf_counter() - start, result


def bench_adversarial() -> dict[str, Any]:
    out = {}
    for name, text in adversarial_inputs().items():
        seconds, verdict = timed(check_step, text)
        out[name] = {"ms": round(seconds * 1000, 2), "status": verdict.status, "reason": verdict.reason[:80]}
    return out


_FUZZ_PIECES = [
    *"0123456789",
    "12",
    "1,000",
    "3.5",
    ".5",
    "$",
    "\\$",
    "%",
    "\\%",
    "1 1/2",
    " ",
    " ",
    "+",
    "-",
    "−",
    "*",
    "**",
    "/",
    "^",
    "×",
    "÷",
    "·",
    "=",
    "≈",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "\\frac{",
    "\\dfrac",
    "\\times",
    "\\cdot",
    "\\div",
    "\\left(",
    "\\right)",
    "\\text{ eggs}",
    "\\mathrm{kg}",
    "\\(",
    "\\)",
    "\\[",
    "\\]",
    "{,}",
    "x",
    " x ",
    "is",
    " of ",
    "eggs",
    "e",
    "1e9",
    "\\sqrt",
    "²",
    "٣",
    "π",
    ".",
    ",",
    "\\",
    "'",
    "\n",
    "9**9**9",
    "10^10",
    "(((",
    ")))",
]


_OPERATOR_SETS = (("+", "-", "*", "/"), ("+", "−", "×", "÷"), ("+", "-", "\\times", "\\div"), ("+", "-", "x", "/"))
_CURRENCIES = ("", "$", "\\$")
_OPENERS = ("", "So ", "\\( ", "\\[ ")
_CLOSERS = ("", " apples.", " \\)", " \\]")


def _random_claim(rng: random.Random) -> str:
    """An arithmetic claim in a random notation, then damaged at a few random places."""
    ops = rng.choice(_OPERATOR_SETS)
    terms = [
        str(rng.choice((rng.randint(0, 99), rng.randint(0, 10**6), round(rng.random() * 100, 2))))
        for _ in range(rng.randint(2, 5))
    ]
    expr = terms[0]
    for term in terms[1:]:
        expr += " " + rng.choice(ops) + " " + rng.choice(_CURRENCIES) + term + rng.choice(("", " eggs", "%"))
    text = rng.choice(_OPENERS) + expr + " = " + str(rng.randint(-10, 10**6)) + rng.choice(_CLOSERS)
    chars = list(text)
    for _ in range(rng.randint(0, 4)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(_FUZZ_PIECES))
    return "".join(chars)


def fuzz_inputs(n: int, seed: int = 0) -> Iterator[str]:
    """Half random token soup, half damaged claims."""
    rng = random.Random(seed)
    for i in range(n):
        if i % 2:
            yield _random_claim(rng)
            continue
        size = rng.choice((3, 8, 20, 60, 200, 1000))
        yield "".join(rng.choice(_FUZZ_PIECES) for _ in range(rng.randint(1, size)))


def bench_fuzz(n: int) -> dict[str, Any]:
    slowest = (0.0, "")
    crashes: list[str] = []
    statuses: Counter[str] = Counter()
    for text in fuzz_inputs(n):
        try:
            seconds, verdict = timed(check_step, text)
        except Exception as exc:  # a crash is what this run looks for
            crashes.append(f"{type(exc).__name__}: {exc}: {text[:200]!r}")
            continue
        statuses[verdict.status] += 1
        if seconds > slowest[0]:
            slowest = (seconds, text)
    return {
        "inputs": n,
        "crashes": len(crashes),
        "crash_examples": crashes[:5],
        "statuses": dict(statuses),
        "slowest_ms": round(slowest[0] * 1000, 2),
        "slowest_input": slowest[1][:300],
        "slowest_input_chars": len(slowest[1]),
    }


def bench_throughput(texts: list[str], seconds: float = 3.0) -> dict[str, Any]:
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for text in texts:
            check_step(text)
        done += len(texts)
    elapsed = time.perf_counter() - start
    return {"checks": done, "seconds": round(elapsed, 3), "checks_per_second": round(done / elapsed)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gsm8k", type=Path, required=True, help="GSM8K-format jsonl (question, answer)")
    parser.add_argument(
        "--model-steps", type=Path, nargs="+", required=True, help="jsonl files of model outputs (field text)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures here as JSON")
    parser.add_argument("--fuzz", type=int, default=10_000, help="number of generated fuzz inputs")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}
    results["gsm8k"] = g = bench_gsm8k(args.gsm8k)
    print(f"GSM8K steps: {g['steps']}; a claim found in {g['claim_found_share']:.2%} ({g['steps_with_claim']})")
    print(f"  correct steps judged correct: {g['correct_share']:.2%} of steps with a claim")
    print(
        f"  perturbed results judged wrong: {g['perturbed_wrong_share']:.2%} of {g['perturbed_steps']} "
        + ", ".join(f"{k} {v:.2%}" for k, v in g["perturbed_wrong_share_by_kind"].items())
    )
    results["model_steps"] = m = bench_model_steps(args.model_steps)
    print(f"Model steps: {m['lines_with_numeric_eq']} lines with a numeric '='")
    print(f"  judged (not 'cannot judge'): {m['judged_share']:.2%}  {m['statuses']}")
    print(f"  distinct lines judged wrong, each with the correction it would get ({len(m['judged_wrong'])}):")
    for row in m["judged_wrong"]:
        print(f"    {row['line'][:150]}\n      -> {row['corrected'][:150]}")
    print(
        f"  perturbed results judged wrong: {m['perturbed_wrong_share']:.2%} of {m['perturbed_lines']}"
        f" ({m['perturbed_wrong_share_of_judged_lines']:.2%} of those on judged lines;"
        f" {m['perturbations_that_fixed_a_slip']} perturbations that turned a slip into the right value left out)"
    )
    results["adversarial"] = adv = bench_adversarial()
    worst = max(adv.items(), key=lambda kv: kv[1]["ms"])
    print(f"Adversarial inputs: {len(adv)}, slowest {worst[1]['ms']} ms ({worst[0]})")
    for name, row in adv.items():
        print(f"  {name:48} {row['ms']:8.2f} ms  {row['status']:8} {row['reason']}")
    results["fuzz"] = f = bench_fuzz(args.fuzz)
    print(
        f"Fuzz: {f['inputs']} inputs, {f['crashes']} crashes, slowest {f['slowest_ms']} ms "
        f"({f['slowest_input_chars']} chars), statuses {f['statuses']}"
    )
    texts = [text for text, _ in gsm8k_steps(read_jsonl(args.gsm8k))][:5000]
    results["throughput"] = tp = bench_throughput(texts)
    print(f"Throughput: {tp['checks_per_second']} step checks/s on one core ({tp['checks']} in {tp['seconds']} s)")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
