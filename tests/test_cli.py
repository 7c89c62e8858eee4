"""The command line, run as a user runs it: a real process, real exit codes, no tracebacks."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def qslm(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def test_unknown_model_lists_the_catalog_without_a_traceback() -> None:
    out = qslm("solve", "What is 2 + 2?", "--model", "no-such-model")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "no-such-model" in out.stderr
    for name in ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m", "gemma3-270m"):
        assert name in out.stderr


@pytest.mark.parametrize("question", ["", "   \n  "])
def test_empty_question_is_a_clear_error(question: str) -> None:
    out = qslm("solve", question, "--model", "smollm2-135m")
    assert out.returncode == 2
    assert "question is empty" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_quantization_is_refused_by_name() -> None:
    out = qslm("solve", "2+2?", "--quant", "int3-magic")
    assert out.returncode == 2
    assert "int3-magic" in out.stderr
    assert "Traceback" not in out.stderr


def test_solve_help_names_every_builtin_policy_and_quantization() -> None:
    from orchestrator.quantize import QUANT_NAMES
    from policies.loading import list_policies

    out = qslm("solve", "--help", env={"COLUMNS": "1000"})  # one line per option: names are not wrapped
    assert out.returncode == 0
    policy_line = next(line for line in out.stdout.splitlines() if line.strip().startswith("--policy"))
    quant_line = next(line for line in out.stdout.splitlines() if line.strip().startswith("--quant"))
    assert set(list_policies()) <= set(policy_line.replace(",", " ").replace("(", " ").replace(")", " ").split())
    for name in QUANT_NAMES:
        assert name in quant_line or name.startswith("rtn-int"), name
    assert "rtn-int2..rtn-int8" in quant_line


def test_models_lists_every_catalog_entry_with_its_readiness() -> None:
    out = qslm("models", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(rows) >= {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m", "gemma3-270m"}
    assert all(isinstance(r["ready"], bool) for r in rows.values())
    table = qslm("models")
    assert "qwen2.5-coder-1.5b (default)" in table.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_solve_end_to_end_on_smollm2(tmp_path: Path) -> None:
    """The real catalog model (fetched and converted on first use), the full graph, a trace page."""
    trace = tmp_path / "trace.html"
    out = qslm(
        "solve", "Tom has 3 bags with 4 apples in each. How many apples does he have?",
        "--model", "smollm2-135m", "--quant", "sim-nf4", "--max-steps", "3", "--max-tokens", "60",
        "--trace", str(trace), "--json",
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert (record["model"], record["quant"], record["policy"]) == ("smollm2-135m", "sim-nf4", "default")
    assert 1 <= len(record["steps"]) <= 3
    assert all(step["text"].strip() for step in record["steps"][:-1])
    assert 0 < record["tokens"] <= 60
    assert record["tokens_spent"] >= record["tokens"]
    page = trace.read_text()
    assert all(html.escape(step["text"].strip()) in page for step in record["steps"] if step["text"].strip())
