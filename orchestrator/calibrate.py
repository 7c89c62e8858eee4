"""``qslm calibrate``: set a policy's confidence thresholds from what the model actually does.

A threshold on the step score decides how often the orchestrator re-samples, and so most of its cost.
The same number means different things on different models and quantizations, so it is measured: plain
greedy answers (batched) are cut into steps at the policy's boundaries, every step is scored by the
policy's monitor and checked by its verifiers, and the answer is compared with the gold one. From that:

- the score distribution and the share of steps each candidate threshold would send to re-sampling;
- how well the score separates steps with a wrong arithmetic claim (and steps of wrongly answered
  questions) from the rest: AUROC, the chance that a bad step scores below a good one (0.5 = no signal);
- a suggested ``accept_threshold`` that re-samples a target share of steps (``--target-rate``), and an
  ``escalate_threshold`` at a quarter of that share; optionally written as a policy that extends the
  one calibrated.

Use questions the evaluation does not (``--offset``), or the thresholds are tuned on the test set.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from orchestrator.files import write_json, write_text

RATES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)  # shares of steps the threshold table shows


@dataclass(frozen=True)
class ScoredStep:
    """One step of a plain greedy answer: its score, the verifiers' status and whether the answer was right."""

    question: int
    index: int
    score: float
    status: str  # "correct" | "wrong" | "unknown" (worst over the policy's verifiers)
    answer_correct: bool


@dataclass
class CalibrationReport:
    """What the thresholds were chosen from, and the choice."""

    model: str
    quant: str
    policy: str
    n_questions: int
    n_steps: int
    accuracy: float  # of the plain greedy answers
    wrong_claim_rate: float  # share of steps with a wrong claim
    auroc_wrong_claim: float | None  # None when there is no step of one kind or the other
    auroc_wrong_answer: float | None
    current_threshold: float
    current_rate: float  # share of steps the policy's threshold re-samples
    target_rate: float
    accept_threshold: float
    escalate_threshold: float
    quantiles: dict[str, float] = field(default_factory=dict)
    by_rate: dict[str, float] = field(default_factory=dict)  # share of steps → threshold
    seconds: float = 0.0
    achieved_rate: float | None = None  # share of steps accept_threshold re-samples (ties keep it under target)
    policy_source: str = ""  # the name or file the policy came from (what a written policy extends)
    data: str = ""
    offset: int = 0
    warnings: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # every step's score, sorted: thresholds for any rate

    def retarget(self, target_rate: float) -> CalibrationReport:
        """The same measurement with thresholds for another share of steps (no model run)."""
        _check_rate(target_rate)
        if not self.scores:
            raise InputError("this calibration report holds no step scores; run qslm calibrate again")
        accept, escalate, achieved = _thresholds(self.scores, target_rate)
        warnings = [w for w in self.warnings if not w.startswith("tied scores")] + _tie_warning(achieved, target_rate)
        return replace(self, target_rate=target_rate, accept_threshold=accept, escalate_threshold=escalate,
                       achieved_rate=achieved, warnings=warnings)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        def roc(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.3f}"

        rates = ", ".join(f"{float(r):.0%} → {t:.3f}" for r, t in self.by_rate.items())
        return "\n".join(
            [
                f"{self.model} {self.quant}, policy {self.policy}: {self.n_questions} questions, {self.n_steps} steps, "
                f"plain accuracy {self.accuracy:.1%}, {self.seconds:.0f}s",
                f"steps with a wrong claim: {self.wrong_claim_rate:.1%}; AUROC of the score for a wrong claim "
                f"{roc(self.auroc_wrong_claim)}, for a wrong answer {roc(self.auroc_wrong_answer)} (0.5 = no signal)",
                f"the policy's accept_threshold {self.current_threshold:.3f} re-samples "
                f"{self.current_rate:.1%} of steps",
                f"threshold by share re-sampled: {rates}",
                f"suggested for {self.target_rate:.0%}: accept_threshold {self.accept_threshold:.3f} "
                f"(re-samples {self.achieved_rate or 0:.1%} of these steps), "
                f"escalate_threshold {self.escalate_threshold:.3f}",
                *(f"warning: {w}" for w in self.warnings),
            ]
        )

    def policy_yaml(self, dest: str | Path | None = None) -> str:
        """A policy extending the calibrated one with the suggested thresholds, to be written at ``dest``
        (a policy that came from a file is extended by its path, relative to ``dest``'s folder)."""
        base = self.policy_source or self.policy
        if Path(base).is_file():
            folder = Path(dest).resolve().parent if dest is not None else Path.cwd()
            base = os.path.relpath(Path(base).resolve(), folder)
        return (
            f"# {self.policy} with thresholds calibrated on {self.n_steps} steps of {self.n_questions} questions\n"
            f"# ({self.model} {self.quant}): about {self.target_rate:.0%} of steps re-sampled\n"
            f"extends: {json.dumps(base)}\n"
            f"confidence:\n"
            f"  accept_threshold: {_down(self.accept_threshold)}\n"
            f"  escalate_threshold: {_down(self.escalate_threshold)}\n"
        )


def _down(x: float) -> str:
    """Four decimals, rounded down: a rounded threshold never re-samples more steps than the exact one."""
    return f"{math.floor(x * 10_000) / 10_000:.4f}"


def auroc(low: Sequence[float], high: Sequence[float]) -> float | None:
    """Chance that a score from ``low`` (bad steps) is below one from ``high`` (good steps); ties count half.

    >>> auroc([0.1, 0.2], [0.3, 0.9])
    1.0
    >>> auroc([0.5], [0.5])
    0.5
    >>> auroc([], [0.3]) is None
    True
    """
    if not low or not high:
        return None
    pooled = sorted([(s, 0) for s in low] + [(s, 1) for s in high])
    rank_sum, i = 0.0, 0  # Mann-Whitney: average ranks over ties
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j][0] == pooled[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # 1-based mean rank of the tie group
        rank_sum += mid * sum(1 for k in range(i, j) if pooled[k][1] == 1)
        i = j
    n_high = len(high)
    return (rank_sum - n_high * (n_high + 1) / 2) / (len(low) * n_high)


def threshold_for_rate(scores: Sequence[float], rate: float) -> float:
    """The largest threshold (among the scores, or 1) that puts at most ``rate`` of ``scores`` strictly below it.

    >>> threshold_for_rate([0.1, 0.2, 0.3, 0.4], 0.5)
    0.3
    >>> threshold_for_rate([0.5, 0.5, 0.5, 0.9], 0.5)  # ties: moving past 0.5 would re-sample 75%
    0.5
    """
    if not 0 <= rate <= 1:
        raise InputError(f"a rate is a share of steps in [0, 1], got {rate}")
    if not scores:
        raise InputError("no steps to calibrate on")
    ordered = sorted(scores)
    allowed = int(rate * len(ordered) + 1e-9)
    if allowed >= len(ordered):
        return 1.0
    return ordered[allowed]


def below(scores: Sequence[float], threshold: float) -> float:
    """Share of ``scores`` strictly below ``threshold`` (the steps a policy would not accept)."""
    return sum(1 for s in scores if s < threshold) / len(scores) if scores else 0.0


def _check_rate(target_rate: float) -> None:
    if not 0 < target_rate < 1:
        raise InputError(f"--target-rate is a share of steps in (0, 1), got {target_rate}")


def _thresholds(scores: Sequence[float], target_rate: float) -> tuple[float, float, float]:
    """accept_threshold for ``target_rate``, escalate_threshold for a quarter of it, and the rate achieved."""
    accept = threshold_for_rate(scores, target_rate)
    return accept, min(threshold_for_rate(scores, target_rate / 4), accept), below(scores, accept)


def _tie_warning(achieved: float, target_rate: float) -> list[str]:
    if achieved >= target_rate / 2:
        return []
    return [f"tied scores: the suggested threshold re-samples {achieved:.1%} of steps, not {target_rate:.0%}; "
            "calibrate on more questions"]  # fmt: skip


def summarize(steps: Sequence[ScoredStep], *, policy: Any, target_rate: float, model: str = "", quant: str = "",
              answers: Mapping[int, bool] | None = None, seconds: float = 0.0) -> CalibrationReport:  # fmt: skip
    """Thresholds and separation figures from scored steps (no model needed).

    ``answers`` is every question's correctness (a question whose answer had no step still counts);
    by default it is read from the steps.
    """
    _check_rate(target_rate)
    scores = [s.score for s in steps]
    if not scores:
        raise InputError("no steps to calibrate on: every answer was empty")
    questions = dict(answers) if answers is not None else {s.question: s.answer_correct for s in steps}
    accept, escalate, achieved = _thresholds(scores, target_rate)
    warnings = _tie_warning(achieved, target_rate)
    if not policy.confidence.enabled:
        warnings.append(f"policy {policy.name!r} has confidence monitoring off: thresholds do nothing until it is on")
    if not policy.resample.enabled and not policy.escalation.enabled:
        warnings.append(f"policy {policy.name!r} neither re-samples nor escalates: a low score changes nothing")
    elif policy.escalation.when != "immediately":
        warnings.append("escalate_threshold only acts with escalation.when: immediately")
    ordered = sorted(scores)
    return CalibrationReport(
        model=model, quant=quant, policy=policy.name, n_questions=len(questions), n_steps=len(steps),
        accuracy=sum(questions.values()) / len(questions),
        achieved_rate=achieved, warnings=warnings,
        wrong_claim_rate=sum(s.status == "wrong" for s in steps) / len(steps),
        auroc_wrong_claim=auroc([s.score for s in steps if s.status == "wrong"],
                                [s.score for s in steps if s.status != "wrong"]),
        auroc_wrong_answer=auroc([s.score for s in steps if not s.answer_correct],
                                 [s.score for s in steps if s.answer_correct]),
        current_threshold=policy.confidence.accept_threshold,
        current_rate=below(scores, policy.confidence.accept_threshold),
        target_rate=target_rate, accept_threshold=accept, escalate_threshold=escalate,
        quantiles={f"{q:.2f}": ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.05, 0.1, 0.25, 0.5)},
        by_rate={f"{r}": threshold_for_rate(scores, r) for r in RATES}, scores=[round(x, 6) for x in ordered],
        seconds=round(seconds, 2),
    )  # fmt: skip


def score_answers(
    loaded: Any,
    policy: Any,
    questions: Sequence[Any],
    *,
    batch: int = 8,
    max_tokens: int = 320,
    progress: bool = False,
) -> tuple[list[ScoredStep], dict[int, bool]]:
    """Plain greedy answers to ``questions`` (EvalQuestion), cut into steps where the orchestrator would cut
    them, scored and checked; also every question's correctness (by ``EvalQuestion.index``)."""
    from tqdm import tqdm

    from orchestrator.confidence import score_step
    from orchestrator.eval_methods import greedy_batches
    from orchestrator.verdicts import resolve_verifiers, run_verifiers
    from verifiers import answers_match, extract_answer

    if batch < 1:
        raise InputError(f"--batch must be at least 1, got {batch}")
    verifiers = resolve_verifiers(policy.verifiers)
    out: list[ScoredStep] = []
    answers: dict[int, bool] = {}
    bar = tqdm(total=len(questions), desc="calibrate", unit="q", file=sys.stderr, disable=not progress)
    for chunk in greedy_batches(loaded, policy, questions, batch=batch, max_tokens=max_tokens):
        for q, res in zip(chunk.questions, chunk.results, strict=True):
            right = answers_match(extract_answer(res.text, strategies=policy.final.answer_strategies), q.gold) is True
            answers[q.index] = right
            previous: list[str] = []
            for whole in res.steps:
                for k, step in enumerate(_cut(whole, policy.steps.boundary)):
                    if not step.text.strip():
                        continue
                    context = {"question": q.question, "previous": previous}
                    verdicts = run_verifiers(verifiers, step.text, context, cut=step.stop_reason == "max_tokens")
                    statuses = {v["status"] for v in verdicts}
                    status = "wrong" if "wrong" in statuses else "correct" if "correct" in statuses else "unknown"
                    out.append(ScoredStep(q.index, k, score_step(step, policy.confidence).score, status, right))
                    previous.append(step.text)
        bar.update(len(chunk.questions))
    bar.close()
    return out, answers


def _cut(whole: Any, boundary: str) -> list[Any]:
    """Steps as the orchestrator's generator ends them (it runs numbered items as blank-line steps)."""
    from orchestrator.plain import split_steps

    if boundary == "none":
        return [whole]
    return list(split_steps(whole, "blank_line" if boundary in ("blank_line", "numbered_item") else "newline"))


def run_calibration(
    data: str | Path,
    *,
    model: str,
    quant: str = "none",
    policy: str = "arithmetic",
    limit: int = 40,
    offset: int = 0,
    batch: int = 8,
    max_tokens: int = 320,
    target_rate: float = 0.15,
    device: str = "auto",
    progress: bool = True,
) -> CalibrationReport:
    """Load ``model`` under ``quant``, answer questions ``offset``..``offset+limit`` of ``data`` and summarize."""
    from orchestrator.eval_data import load_questions
    from orchestrator.loading import load
    from policies import load_policy

    if limit < 1 or offset < 0:
        raise InputError(f"--limit must be at least 1 and --offset at least 0, got {limit} and {offset}")
    if batch < 1 or max_tokens < 1:
        raise InputError(f"--batch and --max-tokens must be at least 1, got {batch} and {max_tokens}")
    _check_rate(target_rate)
    pol = load_policy(policy)
    questions = load_questions(data, limit=offset + limit)[offset:]
    if not questions:
        raise InputError(f"{data} has no questions after the first {offset}")
    started = time.perf_counter()
    loaded = load(model, quant=quant, device=device, progress=progress)
    steps, answers = score_answers(loaded, pol, questions, batch=batch, max_tokens=max_tokens, progress=progress)
    report = summarize(steps, policy=pol, target_rate=target_rate, model=loaded.name, quant=quant, answers=answers,
                       seconds=time.perf_counter() - started)  # fmt: skip
    report.policy_source = str(Path(policy).resolve()) if Path(policy).is_file() else policy
    report.data, report.offset = str(data), offset
    return report


# ------------------------------------------------------------------------------------------------- CLI


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``qslm calibrate``."""
    from orchestrator.catalog import DEFAULT_MODEL

    parser.add_argument("data", nargs="?", help="GSM8K- or MATH-format JSONL with gold answers")
    parser.add_argument("--from-report", default=None, metavar="JSON",
                        help="re-derive thresholds for --target-rate from an earlier report (no model)")  # fmt: skip
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"catalog name, folder or .gguf (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--quant", default="sim-nf4", help="the quantization the thresholds are for (default sim-nf4)")
    parser.add_argument("--policy", default="arithmetic", help="policy to calibrate (default arithmetic)")
    parser.add_argument("--limit", type=int, default=40, help="questions to answer (default 40)")
    parser.add_argument("--offset", type=int, default=0, help="skip this many questions first (keep the eval's out)")
    parser.add_argument("--batch", type=int, default=8, help="questions per batch (default 8)")
    parser.add_argument("--max-tokens", type=int, default=320, help="tokens per answer (default 320)")
    parser.add_argument("--target-rate", type=float, default=0.15, help="share of steps to re-sample (default 0.15)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--out", default="calibration.json", help="report file (default calibration.json)")
    parser.add_argument("--write-policy", default=None, metavar="YAML", help="also write the calibrated policy here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_calibrate_command(args: argparse.Namespace) -> int:
    """Run ``qslm calibrate``: print the summary, write the report (and the policy)."""
    if (
        args.write_policy
        and Path(args.policy).is_file()
        and Path(args.write_policy).resolve() == Path(args.policy).resolve()
    ):
        raise InputError(f"--write-policy {args.write_policy} is the policy being calibrated; write it elsewhere")
    if args.from_report:
        report = load_report(args.from_report).retarget(args.target_rate)
    elif args.data is None:
        raise InputError("name the questions to calibrate on (DATA.jsonl), or an earlier report (--from-report)")
    else:
        report = run_calibration(args.data, model=args.model, quant=args.quant, policy=args.policy, limit=args.limit,
                                 offset=args.offset, batch=args.batch, max_tokens=args.max_tokens,
                                 target_rate=args.target_rate, device=args.device,
                                 progress=not args.no_progress)  # fmt: skip
    print(report.summary())
    out = Path(args.out)
    write_json(out, report.to_dict())
    print(f"wrote {out}")
    if args.write_policy:
        path = Path(args.write_policy)
        write_text(path, report.policy_yaml(path))
        print(f"wrote {path} (use it as --policy {path})")
    return 0


def load_report(path: str | Path) -> CalibrationReport:
    """Read a report written by ``qslm calibrate``; a clear error for anything else."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return CalibrationReport(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a report written by qslm calibrate: {exc}") from None
