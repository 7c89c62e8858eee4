"""``qslm calibrate``: threshold arithmetic, separation figures, and a real run on a tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from orchestrator.calibrate import CalibrationReport, ScoredStep, auroc, below, summarize, threshold_for_rate
from orchestrator.cli import main
from orchestrator.errors import InputError
from policies import load_policy
from tests.tiny import save_tiny


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.15, 0.5, 0.99])
def test_threshold_never_exceeds_the_rate_and_is_the_largest_such(rate: float) -> None:
    rng = random.Random(int(rate * 100))
    scores = [round(rng.random(), 2) for _ in range(200)]  # rounded: many ties
    t = threshold_for_rate(scores, rate)
    assert below(scores, t) <= rate
    bigger = [s for s in sorted(set(scores)) if s > t]
    if bigger:  # the next score up would re-sample more than the rate
        assert below(scores, bigger[0]) > rate


def test_auroc_matches_pair_counting() -> None:
    rng = random.Random(1)
    low = [round(rng.gauss(0.4, 0.2), 1) for _ in range(40)]
    high = [round(rng.gauss(0.7, 0.2), 1) for _ in range(60)]
    pairs = sum((a < b) + 0.5 * (a == b) for a in low for b in high) / (len(low) * len(high))
    assert auroc(low, high) == pytest.approx(pairs)
    assert auroc(high, low) == pytest.approx(1 - pairs)


def test_summary_separates_and_suggests() -> None:
    steps = [ScoredStep(q, k, 0.2 if (q, k) == (0, 1) else 0.5 + 0.01 * (q * 10 + k), "correct", q != 3)
             for q in range(10) for k in range(10)]  # fmt: skip
    steps[1] = ScoredStep(0, 1, 0.2, "wrong", True)  # the one wrong claim scores lowest
    report = summarize(steps, policy=load_policy("arithmetic"), target_rate=0.1)
    assert report.n_steps == 100 and report.n_questions == 10 and report.accuracy == 0.9
    assert report.auroc_wrong_claim == 1.0 and report.wrong_claim_rate == 0.01
    assert below([s.score for s in steps], report.accept_threshold) == 0.1
    assert report.escalate_threshold <= report.accept_threshold
    assert report.current_rate == below([s.score for s in steps], load_policy("arithmetic").confidence.accept_threshold)
    assert report.achieved_rate == 0.1
    assert report.warnings == ["escalate_threshold only acts with escalation.when: immediately"]
    with pytest.raises(InputError):
        summarize(steps, policy=load_policy("arithmetic"), target_rate=1.5)
    with pytest.raises(InputError):
        summarize([], policy=load_policy("arithmetic"), target_rate=0.1)


def test_cli_calibrates_a_tiny_model_and_writes_a_loadable_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = save_tiny("llama", tmp_path / "m", layers=2)
    data = tmp_path / "q.jsonl"
    rows = [{"question": f"What is {i} + {i}?", "answer": f"{i}+{i}={2 * i}\n#### {2 * i}"} for i in range(6)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out, pol = tmp_path / "c.json", tmp_path / "calibrated.yaml"
    code = main(["calibrate", str(data), "--model", str(folder), "--quant", "rtn-int4", "--limit", "4", "--offset",
                 "2", "--batch", "3", "--max-tokens", "24", "--device", "cpu", "--out", str(out), "--write-policy",
                 str(pol), "--no-progress", "--target-rate", "0.25"])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["n_questions"] == 4 and report["n_steps"] >= 4 and report["quant"] == "rtn-int4"
    assert 0 <= report["accept_threshold"] <= 1 and report["by_rate"]["0.5"] >= report["by_rate"]["0.05"]
    calibrated = load_policy(pol)
    assert calibrated.confidence.accept_threshold == pytest.approx(report["accept_threshold"], abs=1e-4)
    assert calibrated.repair.on_wrong == load_policy("arithmetic").repair.on_wrong  # extends the calibrated policy
    assert "suggested for 25%" in capsys.readouterr().out


def test_cli_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "1+1?", "answer": "#### 2"}\n', encoding="utf-8")
    assert main(["calibrate", str(data), "--offset", "5", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "no questions after the first 5" in err and "Traceback" not in err


def test_tied_scores_and_inert_policies_are_warned_about() -> None:
    steps = [ScoredStep(q, 0, 0.9, "unknown", True) for q in range(20)]
    report = summarize(steps, policy=load_policy("verify_only"), target_rate=0.15)
    assert report.achieved_rate == 0.0
    assert any("tied scores" in w for w in report.warnings)
    assert any("monitoring off" in w for w in report.warnings)
    assert "warning: tied scores" in report.summary()


def test_answers_without_steps_count_in_the_accuracy() -> None:
    steps = [ScoredStep(0, 0, 0.5, "correct", True)]
    report = summarize(steps, policy=load_policy("arithmetic"), target_rate=0.5, answers={0: True, 1: False})
    assert report.n_questions == 2 and report.accuracy == 0.5


def test_a_policy_from_a_file_is_extended_by_its_path(tmp_path: Path) -> None:
    mine = tmp_path / "pol" / "mine.yaml"
    mine.parent.mkdir()
    mine.write_text("extends: arithmetic\nresample: {n_candidates: 6}\n", encoding="utf-8")
    steps = [ScoredStep(q, 0, q / 10, "correct", True) for q in range(10)]
    report = summarize(steps, policy=load_policy(mine), target_rate=0.2)
    report.policy_source = str(mine)
    dest = tmp_path / "out" / "calibrated.yaml"
    dest.parent.mkdir()
    dest.write_text(report.policy_yaml(dest), encoding="utf-8")
    calibrated = load_policy(dest)
    assert calibrated.resample.n_candidates == 6  # from mine.yaml, found relative to the new file
    assert calibrated.confidence.accept_threshold == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target-rate", "1.5"], "--target-rate"),
        (["--batch", "0"], "--batch"),
        (["--max-tokens", "0"], "--max-tokens"),
    ],
)
def test_bad_arguments_fail_before_any_model_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "1+1?", "answer": "#### 2"}\n', encoding="utf-8")
    # the model does not exist: reaching the loader would fail with a different message
    assert main(["calibrate", str(data), "--model", str(tmp_path / "no-model"), "--no-progress", *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_retarget_recomputes_thresholds_without_a_model() -> None:
    steps = [ScoredStep(q, k, (q * 10 + k) / 100, "correct", True) for q in range(10) for k in range(10)]
    report = summarize(steps, policy=load_policy("arithmetic"), target_rate=0.15)
    again = CalibrationReport(**json.loads(json.dumps(report.to_dict())))  # what a report file holds
    lower = again.retarget(0.05)
    assert lower.accept_threshold == pytest.approx(0.05) and lower.achieved_rate == 0.05
    assert lower.escalate_threshold <= lower.accept_threshold and lower.target_rate == 0.05
    assert again.retarget(0.15).accept_threshold == pytest.approx(report.accept_threshold)
    with pytest.raises(InputError, match="no step scores"):
        CalibrationReport(**{**report.to_dict(), "scores": []}).retarget(0.1)


def test_cli_retargets_an_earlier_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    steps = [ScoredStep(q, 0, q / 20, "correct", True) for q in range(20)]
    first = tmp_path / "first.json"
    first.write_text(json.dumps(summarize(steps, policy=load_policy("arithmetic"), target_rate=0.5).to_dict()))
    out, pol = tmp_path / "second.json", tmp_path / "p.yaml"
    assert main(["calibrate", "--from-report", str(first), "--target-rate", "0.1", "--out", str(out),
                 "--write-policy", str(pol)]) == 0  # fmt: skip
    assert json.loads(out.read_text())["accept_threshold"] == pytest.approx(0.1)
    assert load_policy(pol).confidence.accept_threshold == pytest.approx(0.1)
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["calibrate", "--from-report", str(tmp_path / "bad.json")]) != 0
    assert main(["calibrate"]) != 0
    err = capsys.readouterr().err
    assert "not a report written by qslm calibrate" in err and "DATA.jsonl" in err and "Traceback" not in err
