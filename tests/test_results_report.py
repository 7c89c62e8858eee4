"""The results report rebuilds from the per-question rows under docs/results, with no model and no data file."""

from __future__ import annotations

import importlib.util
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
        "| `gsm8k-0.5b-core-20` | gsm8k, qwen2.5-coder-0.5b: 3 configurations × 20 questions | done |",
    ):
        assert heading in text
    # every accuracy in the summary lines states its n
    for line in text.splitlines():
        if line.startswith("- ") and "% →" in line:
            assert re.search(r"\(n = \d+[;)]|lost \d+ of \d+;|on the \d+ (shared|paired) questions", line), line
    # each results folder got its table, summary and plots
    for folder in (tmp_path / "docs" / "results").iterdir():
        if (folder / "results.jsonl").is_file():
            assert (folder / "summary.json").is_file() and (folder / "accuracy_vs_cost.png").stat().st_size > 0
            assert f"results/{folder.name}/results.jsonl" in text
