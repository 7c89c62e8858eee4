"""The arithmetic of an evaluation: Wilson intervals, paired fidelity, restoration ratios, cost ratios.

Pure functions over result rows (plain dicts, one per question × configuration, as written to the
results JSONL), so a report can be rebuilt from a committed file without a model.

Fidelity is paired: for the questions both a configuration and its reference answered, the share whose
final answers agree (two missing answers agree; one missing answer does not). Restoration says how
much of the gap between the quantized model's plain greedy run and the reference a method closes,
``(method - quantized) / (reference - quantized)``, on the questions all three answered; it is
undefined (None, with the reason) when the reference does not score above the quantized model.

>>> [round(x, 4) for x in wilson(8, 10)]
[0.4902, 0.9433]
>>> restoration(0.75, 0.5, 1.0)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from orchestrator.eval_data import EvalConfig
from orchestrator.eval_strict import strict_marks

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when there is no observation.

    >>> wilson(0, 10)[0], round(wilson(0, 10)[1], 4)
    (0.0, 0.2775)
    """
    if n <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def answers_agree(a: str | None, b: str | None) -> bool:
    """Do two configurations give the same final answer? Two missing answers agree.

    >>> answers_agree("1,200", "1200"), answers_agree(None, None), answers_agree("3", None)
    (True, True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    from verifiers import answers_match

    return answers_match(a, b) is True


def restoration(method: float, quantized: float, reference: float) -> float | None:
    """Share of the quantization gap a method closes; None when there is no gap to close (the reference
    does not score above the quantized model: a ratio over a zero or negative gap says nothing)."""
    gap = reference - quantized
    if gap < 1e-12:
        return None
    return (method - quantized) / gap


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test on discordant pairs (McNemar's exact test): how surprising is the split?

    >>> round(sign_test(8, 1), 4), sign_test(0, 0)
    (0.0391, 1.0)
    """
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def reference_for(config: EvalConfig, configs: Sequence[EvalConfig]) -> EvalConfig | None:
    """The reference of a configuration: the first plain greedy run of the same model at quant 'none'."""
    for c in configs:
        if c.model == config.model and c.quant == "none" and c.method == "plain":
            return c
    return None


def baseline_for(config: EvalConfig, configs: Sequence[EvalConfig]) -> EvalConfig | None:
    """Plain greedy on the same model and quantization: what cost and restoration are measured against."""
    for c in configs:
        if c.model == config.model and c.quant == config.quant and c.method == "plain":
            return c
    return None


def _index(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["config"], {})[row["question_id"]] = row
    return by


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci95": [lo, hi]}


def finished_prefix(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of the questions before the first one not yet answered, in question order.

    Concurrent solves finish out of order, quick questions first: a partial run's figures over every
    finished row would lean towards the easy questions. Questions start in order, so the leading run
    of answered ones is a sample that does not depend on how long each took. Rows without an
    ``index`` are kept as they are.

    >>> sorted(finished_prefix({q: {"index": i} for q, i in [("a", 0), ("b", 1), ("d", 3)]}))
    ['a', 'b']
    """
    if not all("index" in r for r in rows.values()):
        return rows
    answered = {int(r["index"]) for r in rows.values()}
    first_missing = next(i for i in range(len(answered) + 1) if i not in answered)
    return {q: r for q, r in rows.items() if int(r["index"]) < first_missing}


def was_cut(row: dict[str, Any]) -> bool:
    """Whether an answer ran out of budget before it ended: plain and self-consistency rows say so
    (``finished``; for self-consistency, any chain cut); an orchestrated one kept its whole token budget."""
    if "finished" in row:
        return not row["finished"]
    return "max_tokens" in row and int(row.get("tokens_kept", row["tokens"])) >= int(row["max_tokens"])


def summarize(
    rows: Iterable[dict[str, Any]], configs: Sequence[EvalConfig], expected: int | None = None
) -> list[dict[str, Any]]:
    """One summary dict per configuration (in the given order) from the result rows.

    ``expected`` is how many questions the run asked for; a configuration with fewer rows is
    marked incomplete.
    """
    indexed = _index(rows)
    by = {config: finished_prefix(mine) for config, mine in indexed.items()}
    done = {config: len(mine) for config, mine in indexed.items()}
    out: list[dict[str, Any]] = []
    for config in configs:
        mine = by.get(config.id, {})
        n = len(mine)
        correct = sum(1 for r in mine.values() if r.get("correct"))
        answered = sum(1 for r in mine.values() if r.get("answer") is not None)
        marks = strict_marks(mine, config) if mine else None
        entry: dict[str, Any] = {
            "config": config.id,
            "model": config.model,
            "quant": config.quant,
            "method": config.method_label,
            "policy": config.policy_name,
            "n": n,
            "done": done.get(config.id, 0),  # rows written; figures use the first n of them in question order
            "expected": expected,
            "complete": expected is not None and n >= expected,
            "accuracy": _rate(correct, n),
            # only answers the model stated count (orchestrator.eval_strict); None where rows cannot say
            "strict": (
                {**_rate(sum(r for r, _ in marks.values()), n), "stated": sum(st for _, st in marks.values())}
                if marks is not None
                else None
            ),
            "answered": answered,
            "tokens_mean": _mean([float(r["tokens"]) for r in mine.values()]),
            "tokens_kept_mean": _mean([float(r.get("tokens_kept", r["tokens"])) for r in mine.values()]),
            "cut": sum(1 for r in mine.values() if was_cut(r)),
            "seconds_mean": _mean([float(r["seconds"]) for r in mine.values()]),
            "seconds_total": sum(float(r["seconds"]) for r in mine.values()),
            "cpu_seconds_mean": _mean([float(r["cpu_seconds"]) for r in mine.values() if "cpu_seconds" in r]),
            "interventions": _interventions(mine.values()),
            "agreement": agreement(mine.values()),
        }
        ref = reference_for(config, configs)
        entry["reference"] = ref.id if ref else None
        entry["fidelity"] = _fidelity(mine, by.get(ref.id, {})) if ref and ref.id != config.id else None
        base = baseline_for(config, configs)
        entry["baseline"] = base.id if base else None
        entry["cost"] = _cost(mine, by.get(base.id, {})) if base and base.id != config.id else None
        restorable = ref is not None and base is not None and config.quant != "none" and config.method != "plain"
        entry["restoration"] = (
            _restoration(mine, by.get(base.id, {}), by.get(ref.id, {}))
            if restorable and ref is not None and base is not None
            else None
        )
        entry["quantization_cost"] = (
            _quantization_cost(mine, by.get(ref.id, {}))
            if ref is not None and config.quant != "none" and config.method == "plain"
            else None
        )
        out.append(entry)
    return out


def agreement(rows: Iterable[dict[str, Any]]) -> dict[str, int] | None:
    """For self-consistency rows: on how many questions two or more chains agreed on the answer, and how
    many of those were right, against the questions where no two did (every chain answered differently, or
    at most one answered at all: the vote then takes the first answer given, no better than one sample).
    None for rows without votes.

    >>> agreement([{"vote_count": 3, "correct": True}, {"vote_count": 1, "correct": False}, {"vote_count": 2}])
    {'n': 3, 'agreed': 2, 'agreed_correct': 1, 'split': 1, 'split_correct': 0}
    """
    voted = [r for r in rows if "vote_count" in r]
    if not voted:
        return None
    agreed = [r for r in voted if int(r["vote_count"]) >= 2]
    split = [r for r in voted if int(r["vote_count"]) < 2]
    return {
        "n": len(voted),
        "agreed": len(agreed),
        "agreed_correct": sum(1 for r in agreed if r.get("correct")),
        "split": len(split),
        "split_correct": sum(1 for r in split if r.get("correct")),
    }


def _interventions(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for r in rows:
        for kind, count in (r.get("interventions") or {}).items():
            total[kind] = total.get(kind, 0) + int(count)
    return dict(sorted(total.items()))


def _fidelity(mine: dict[str, dict[str, Any]], ref: dict[str, dict[str, Any]]) -> dict[str, Any]:
    shared = [q for q in mine if q in ref]
    agree = sum(1 for q in shared if answers_agree(mine[q].get("answer"), ref[q].get("answer")))
    return _rate(agree, len(shared))


def _cost(mine: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Tokens, wall time and CPU time against the baseline on the shared questions. Times are paired only
    where the two rows are not known to come from different machines (rows record theirs; CPUs differ 2x)."""
    shared = [q for q in mine if q in base]
    tok_m = sum(float(mine[q]["tokens"]) for q in shared)
    tok_b = sum(float(base[q]["tokens"]) for q in shared)
    same = [q for q in shared if same_machine(mine[q], base[q])]
    sec_m = sum(float(mine[q]["seconds"]) for q in same)
    sec_b = sum(float(base[q]["seconds"]) for q in same)
    timed = [q for q in same if "cpu_seconds" in mine[q] and "cpu_seconds" in base[q]]
    cpu_m = sum(float(mine[q]["cpu_seconds"]) for q in timed)
    cpu_b = sum(float(base[q]["cpu_seconds"]) for q in timed)
    return {
        "n": len(shared),
        "tokens_ratio": tok_m / tok_b if tok_b else None,
        "seconds_ratio": sec_m / sec_b if sec_b else None,
        "seconds_n": len(same),
        "cpu_ratio": cpu_m / cpu_b if cpu_b else None,  # process CPU time: not inflated by other jobs or pauses
        "cpu_n": len(timed),
    }


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """False only where both rows name their machine and the names differ (older rows name none).

    >>> same_machine({"machine": "cpu: A"}, {"machine": "cpu: B"}), same_machine({}, {"machine": "cpu: B"})
    (False, True)
    """
    return "machine" not in a or "machine" not in b or a["machine"] == b["machine"]


def discordant(
    method: Mapping[Any, Mapping[str, Any]], base: Mapping[Any, Mapping[str, Any]], keys: Iterable[Any]
) -> tuple[list[Any], list[Any]]:
    """The questions (of ``keys``) the method got right where the base got them wrong, and the reverse.

    >>> right, wrong = {"correct": True}, {"correct": False}
    >>> discordant({1: right, 2: wrong, 3: right}, {1: wrong, 2: right, 3: right}, [1, 2, 3])
    ([1], [2])
    """
    gained: list[Any] = []
    lost: list[Any] = []
    for q in keys:
        m, b = bool(method[q].get("correct")), bool(base[q].get("correct"))
        if m and not b:
            gained.append(q)
        elif b and not m:
            lost.append(q)
    return gained, lost


def gained_lost(
    method: Mapping[Any, Mapping[str, Any]], base: Mapping[Any, Mapping[str, Any]], keys: Iterable[Any]
) -> tuple[int, int]:
    """How many questions the method gained and lost against the base (:func:`discordant`, counted).

    >>> right, wrong = {"correct": True}, {"correct": False}
    >>> gained_lost({1: right, 2: wrong, 3: right}, {1: wrong, 2: right, 3: right}, [1, 2, 3])
    (1, 1)
    """
    gained, lost = discordant(method, base, keys)
    return len(gained), len(lost)


def fired(row: Mapping[str, Any]) -> str:
    """What the orchestrator did on one question: the intervention kinds that fired, joined, or "none".

    A question gained or lost with "none" changed only through batch numerics (plain greedy and the
    orchestrator run forwards of different shapes), so it measures noise rather than the method.

    >>> fired({"interventions": {"resample": 2, "correct": 1}}), fired({"interventions": {}})
    ('correct+resample', 'none')
    """
    return "+".join(sorted(k for k, v in (row.get("interventions") or {}).items() if v)) or "none"


def _fired_on(rows: Mapping[str, Mapping[str, Any]], questions: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for q in questions:
        kind = fired(rows[q])
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _quantization_cost(mine: dict[str, dict[str, Any]], ref: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What quantizing cost plain greedy, paired per question: the reference's wins it lost, and the reverse."""
    shared = [q for q in mine if q in ref]
    n = len(shared)
    gained, lost = gained_lost(mine, ref, shared)  # right only after quantizing (a lucky flip), right only before
    return {
        "n": n,
        "reference": sum(1 for q in shared if ref[q].get("correct")) / n if n else None,
        "quantized": sum(1 for q in shared if mine[q].get("correct")) / n if n else None,
        "gained": gained,
        "lost": lost,
        "sign_test_p": sign_test(gained, lost),
    }


def _restoration(
    mine: dict[str, dict[str, Any]], base: dict[str, dict[str, Any]], ref: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    shared = [q for q in mine if q in base and q in ref]
    n = len(shared)
    if n == 0:
        return {"n": 0, "accuracy": None, "fidelity": None, "note": "no question answered by all three"}
    acc = [sum(1 for q in shared if rows[q].get("correct")) / n for rows in (mine, base, ref)]
    fid = [
        sum(1 for q in shared if answers_agree(rows[q].get("answer"), ref[q].get("answer"))) / n
        for rows in (mine, base)
    ]
    gained, lost = discordant(mine, base, shared)
    out: dict[str, Any] = {
        "n": n,
        "gained": len(gained),
        "lost": len(lost),
        "sign_test_p": sign_test(len(gained), len(lost)),
    }
    # the gap itself on these questions, and the paired view of restoration: of the questions quantizing
    # lost, how many the method won back
    lucky, lost_to_quant = discordant(base, ref, shared)
    out["gap_sign_test_p"] = sign_test(len(lucky), len(lost_to_quant))
    out["lost_to_quantization"] = len(lost_to_quant)
    out["recovered"] = sum(1 for q in lost_to_quant if mine[q].get("correct"))
    if any("interventions" in mine[q] for q in shared):
        out["gained_with"] = _fired_on(mine, gained)
        out["lost_with"] = _fired_on(mine, lost)
    for name, (m, qv, rv) in {"accuracy": acc, "fidelity": (fid[0], fid[1], 1.0)}.items():
        value = restoration(m, qv, rv)
        out[name] = {
            "value": value,
            "method": m,
            "quantized": qv,
            "reference": rv,
            "note": None if value is not None else "undefined: the reference does not score above the quantized model",
        }
    return out
