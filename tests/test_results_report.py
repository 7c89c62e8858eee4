"""The results report rebuilds from the per-question rows under docs/results, with no model and no data file."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _make_results(root: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """docs/make_results.py with its paths pointed at a copy of the committed results under ``root``."""
    spec = importlib.util.spec_from_file_location("make_results", REPO / "docs" / "make_results.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_results", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    docs = root / "docs"
    for name in ("results", "profiles"):
        shutil.copytree(REPO / "docs" / name, docs / name)
    paths = {
        "ROOT": root,
        "DOCS": docs,
        "RESULTS": docs / "results",
        "REPORT": docs / "results.md",
        "SYNTH_FILE": docs / "results" / "synthetic_suite.jsonl",
        "PROFILES": docs / "profiles",
        "POLICIES": docs / "results" / "policies",
    }
    for name, value in paths.items():
        monkeypatch.setattr(module, name, value)
    return module


def test_report_rebuilds_from_committed_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    make_results = _make_results(tmp_path, monkeypatch)
    report = make_results.write_report()
    text = report.read_text(encoding="utf-8")
    for heading in (
        "## Where the orchestrator helps, and where it does not",
        "What quantization costs plain greedy",
        "What the orchestrator buys back",
        "## What this is compared with",
        "## Which layers to escalate: profiles",
        "## How to read the tables",
        "## The plan",
        "| `gsm8k-0.5b-core-20` | gsm8k, qwen2.5-coder-0.5b: 3 configurations × 20 questions | done | – |",
    ):
        assert heading in text
    # the layer summary has a row per committed layer comparison, profile beside default
    layer_reports = sorted((tmp_path / "docs" / "results" / "layers").glob("*.json"))
    summary_rows = [
        line for line in text.splitlines() if re.match(r"\| qwen[^|]+\| `[^`]+` \| \d+ \| [\d.]+% \|", line)
    ]
    assert len(summary_rows) == len(layer_reports) > 0
    # self-consistency says how often its chains agreed at all (the committed rows hold sc4 on the 0.5B)
    assert re.search(r"sc4: .*; two or more chains agreed on \d+ of \d+ questions \(\d+ of them right\)", text)
    # every accuracy in the summary lines states its n
    for line in text.splitlines():
        if line.startswith("- ") and "% →" in line:
            assert re.search(r"\(n = \d+[;)]|lost \d+ of \d+;|on the \d+ (shared|paired) questions", line), line
    # the final-answer replay, under each row's own rule, gives back nearly every recorded answer, and where
    # it does not (steps that ended inside a line, the checker of the day), never another score
    replay = re.search(r"gives its recorded answer and resolution on (\d+) of (\d+) rows", text)
    assert replay and int(replay.group(1)) >= 0.98 * int(replay.group(2)) > 0
    assert "scored otherwise" not in text
    # strict scoring of one answer only takes away: right strictly is right flexibly, and stated (a
    # self-consistency vote among stated answers alone may differ from the flexible one either way)
    strict_rows = re.findall(r"^\| \w+: [^|]+\| ([^|]+)\| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", text, re.M)
    single = [tuple(map(int, r[1:])) for r in strict_rows if " + sc" not in r[0]]
    assert single
    for n, flexible, strict, stated in single:
        assert strict <= min(flexible, stated) and stated <= n
    assert any(strict < flexible for _, flexible, strict, _ in single)  # the GSM8K cut answers
    # each results folder got its table, summary and plots
    for folder in (tmp_path / "docs" / "results").iterdir():
        if (folder / "results.jsonl").is_file():
            assert (folder / "summary.json").is_file() and (folder / "accuracy_vs_cost.png").stat().st_size > 0
            assert f"results/{folder.name}/results.jsonl" in text


def test_superseded_rows_are_set_aside_and_flagged_until_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows a fix made stale carry the stage's note in the report until its rerun sets them aside (kept in
    superseded.jsonl, never deleted); other configurations' rows and newer rows stay where they are."""
    pytest.importorskip("matplotlib")
    make_results = _make_results(tmp_path, monkeypatch)
    stage = next(st for st in make_results.PLAN if getattr(st, "superseded", None))
    folder = make_results.RESULTS / stage.out.name
    results = folder / "results.jsonl"
    # a row of the stage's configuration made after the fix, and one of another configuration made before it
    fresh = {
        "config": stage.configs[0],
        "question_id": "fresh",
        "index": 999,
        "tokens": 9,
        "seconds": 1.0,
        "time": "2999-01-01T00:00:00",
    }
    other = {
        "config": "other:none:plain",
        "question_id": "old",
        "index": 998,
        "tokens": 9,
        "seconds": 1.0,
        "time": "2000-01-01T00:00:00",
    }
    with results.open("a", encoding="utf-8") as f:
        f.write(json.dumps(fresh) + "\n" + json.dumps(other) + "\n")
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    stale = [r for r in rows if r["config"] in stage.configs and r.get("time", "") < stage.superseded.before]
    note = stage.superseded.why
    if stale:
        before = make_results.write_report().read_text(encoding="utf-8")
        assert note in before
        assert "to be rerun: rows predate a fix (" in before  # in the stage's table, not "done"
        assert "(**note**: rows to be rerun, see the note above)" in before  # beside the restoration figure too
        rerun = next(line for line in before.splitlines() if line.startswith(f"| `{stage.name}` |"))
        assert f" | 0/{stage.limit} rows | ≈ " in rerun  # superseded rows do not count as written, but time it

    assert make_results.set_aside(folder, stage.configs, stage.superseded.before) == len(stale)

    kept = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert len(kept) == len(rows) - len(stale) and fresh in kept and other in kept
    if stale:
        aside = [json.loads(line) for line in (folder / "superseded.jsonl").read_text(encoding="utf-8").splitlines()]
        assert aside[-len(stale) :] == stale
    text = make_results.write_report().read_text(encoding="utf-8")
    assert note not in text and "to be rerun: " not in text
    assert make_results.set_aside(folder, stage.configs, stage.superseded.before) == 0  # nothing left to move


def test_plan_estimates_the_time_left_from_recorded_rates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unwritten rows are timed at their configuration's recorded seconds per question, else at those of its
    model and method there, rows run about as wide as the plan's batches first; a row two stages plan counts
    once; a configuration nothing has timed says so."""
    make_results = _make_results(tmp_path, monkeypatch)
    monkeypatch.setattr(make_results, "RESULTS", tmp_path / "fresh")
    stage = make_results.Stage
    plan = (
        stage("first", "gsm8k", "m", 4, ("sim-nf4:orchestrated:a", "sim-nf4:orchestrated:b")),
        stage("wider", "gsm8k", "m", 6, ("sim-nf4:orchestrated:a", "sim-nf4:orchestrated:b")),
        stage("other-model", "gsm8k", "n", 2, ("sim-nf4:plain",)),
        stage("plain", "gsm8k", "m", 2, ("sim-nf4:plain",)),
    )
    monkeypatch.setattr(make_results, "PLAN", plan)
    folder = plan[0].out
    folder.mkdir(parents=True)
    rows = [
        {"config": "m:sim-nf4:orchestrated:a", "question_id": f"q{i}", "index": i, "seconds": s, "time": "2026-01-01"}
        for i, s in ((0, 1200.0), (1, 2400.0))  # 1800 s a question
    ]
    # a plain row of its own run 8 a batch, and one of the reference run as wide as the plan runs plain now
    rows.append({"config": "m:sim-nf4:plain", "question_id": "q0", "index": 0, "seconds": 100.0, "batch": 8})
    rows.append({"config": "m:none:plain", "question_id": "q0", "index": 0, "seconds": 720.0, "batch": 32})
    (folder / "results.jsonl").write_text(
        "".join(json.dumps({"tokens": 9, **r}) + "\n" for r in rows), encoding="utf-8"
    )
    lines = make_results.plan_status()
    cells = {line.split(" | ")[0].strip("| `"): line.split(" | ")[2:] for line in lines if line.startswith("| `")}
    # first: a's questions 2-3 and b's 0-3 at a's rate: 6 x 1800 s; wider: questions 4-5 of both
    assert cells["first"] == ["2/8 rows", "≈ 3.0 h |"]
    assert cells["wider"] == ["2/12 rows", "≈ 2.0 h |"]
    assert cells["other-model"] == ["0/2 rows", "? |"]
    assert cells["plain"] == ["1/2 rows", "≈ 0.2 h |"]  # the reference's 720 s, not its own narrow 100 s
    assert "about 5.2 h of wall time" in lines[-1] and "`other-model`" in lines[-1]


def test_a_results_file_that_is_not_ours_is_said_not_traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    make_results = _make_results(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)  # main moves to the (patched) repository root; the test's own directory comes back
    results = next(make_results.RESULTS.glob("*/results.jsonl"))
    with results.open("a", encoding="utf-8") as f:
        f.write("[1, 2]\n")
    assert make_results.main(["--report-only"]) == 2
    err = capsys.readouterr().err
    assert f"{results}:" in err and "is not a result row (a JSON array, not an object)" in err


def test_many_sign_tests_are_read_with_holms_correction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_results = _make_results(tmp_path, monkeypatch)
    lone = make_results.many_tests([0.039, 0.62, 1.0])
    assert "3 sign tests" in lone and "up to 14%" in lone and "p < 0.05 / 3 = 0.0167" in lone and "keeps none" in lone
    # Holm: 0.001 < 0.05/3 and 0.02 < 0.05/2 hold, then 0.2 >= 0.05 stops it
    assert "keeps 2 of them" in make_results.many_tests([0.2, 0.001, 0.02])
    assert "keeps 1 of them" in make_results.many_tests([0.001, 0.03, 0.04])  # 0.03 >= 0.05/2 stops at the second
    assert "none reaches 5%" in make_results.many_tests([0.3, 0.06])


def test_rows_written_before_machines_were_recorded_get_the_machine_of_their_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_results = _make_results(tmp_path, monkeypatch)
    (first_until, earlier), (_, later) = make_results.MACHINES_BEFORE_RECORDING[:2]
    assert make_results.machine_of({"time": "2026-11-24T18:00:00"}) == earlier
    assert make_results.machine_of({}) == earlier  # no time at all: older still
    assert make_results.machine_of({"time": first_until}) == later
    assert make_results.machine_of({"time": "2026-11-24T18:00:00", "machine": "cuda: H100"}) == "cuda: H100"


def test_self_consistency_rows_with_stated_votes_are_scored_strictly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    make_results = _make_results(tmp_path, monkeypatch)
    results = tmp_path / "docs" / "results" / "gsm8k-1.5b" / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    sc = [r for r in rows if r["config"].endswith(":sc4")]
    assert sc and not any("votes_stated" in r for r in sc)  # the committed rows predate them
    for r in sc:  # as if every chain had stated its vote: the strict vote is then the flexible one
        r["votes_stated"] = r["votes"]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    text = make_results.write_report().read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("| gsm8k: qwen2.5-coder-1.5b | `sim-nf4` + sc4 |"))
    n, flexible, strict, stated = map(int, re.findall(r"\| (\d+) ", line + " ")[-4:])
    assert (n, strict, stated) == (len(sc), flexible, sum(any(r["votes"]) for r in sc))
    assert re.search(r"- gsm8k, qwen2\.5-coder-1\.5b, `sim-nf4` \+ sc4, scored strictly against plain greedy", text)
    # each orchestrated headline line says how it reads scored strictly
    headline = text.split("What the orchestrator buys back")[1].split("sign tests at 5% each")[0]
    orchestrated = [x for x in headline.splitlines() if x.startswith("- ") and "+ orchestrator" in x]
    assert orchestrated and all("; scored strictly, gained " in x for x in orchestrated)
