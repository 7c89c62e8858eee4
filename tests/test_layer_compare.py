"""Layer choices compared on held-out text: consistent with the profile, exact at the ends, weights intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from orchestrator import profile as prof
from orchestrator.errors import InputError, QuantizationError
from orchestrator.layer_compare import LayerChoiceReport, compare_layer_choices
from orchestrator.loading import load
from tests.tiny import save_tiny

QUANT = "rtn-int3"
TEXTS = [t[: 20 + 7 * i] for i, t in enumerate(prof.calibration_texts(limit=3))]
KW: dict[str, Any] = dict(texts=TEXTS, max_tokens=40, batch_size=2, progress=False)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = save_tiny("qwen2", tmp_path_factory.mktemp("tiny") / "qwen2", layers=4)
    return load(str(folder), quant="none", device="cpu", progress=False)


def test_choices_agree_with_profile_and_ends_are_exact(loaded: Any, tmp_path: Path) -> None:
    before = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
    profile = prof.run_profile(loaded, quant=QUANT, **KW)
    path = profile.write_profile(tmp_path / "p.json")
    choices = {"all": "all", "layer 2": [2], "first two": [0, 1], "profile": f"profile:{path}"}
    report = compare_layer_choices(loaded, quant=QUANT, choices=choices, profile_layers=2, **KW)
    by = {c.name: c for c in report.choices}
    assert report.quantized_kl == pytest.approx(profile.full_kl, rel=1e-6)
    assert by["all"].kl < 1e-9 and by["all"].top1_agreement == 1.0 and by["all"].recovered == pytest.approx(1.0)
    # one layer restored together is what the profile measured for that layer alone
    assert by["layer 2"].kl == pytest.approx(profile.layers[2].restore_kl, rel=1e-6, abs=1e-12)
    assert by["profile"].layers == sorted(profile.top_layers(2))
    assert by["first two"].layers == [0, 1] and 0 < by["first two"].kl < report.quantized_kl
    assert by["all"].bytes == 2 * by["first two"].bytes == 4 * by["layer 2"].bytes > 0
    assert set(by["layer 2"].classes) >= {"number", "other"}
    table = report.table()
    assert table.index("| all |") < table.index("| first two |")  # best (lowest KL) first
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert LayerChoiceReport.read(report.write(tmp_path / "r.json")) == report  # what the results report reads
    (tmp_path / "bad.json").write_text('{"model": "m"}')
    with pytest.raises(InputError, match="not a layer-choice report"):
        LayerChoiceReport.read(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot write"):
        report.write(tmp_path / "bad.json" / "under_a_file.json")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"choices": {}}, InputError, "at least one"),
        ({"choices": {"x": [9]}}, InputError, "9"),
        ({"choices": {"x": [1]}, "quant": "bnb-nf4"}, QuantizationError, "simulated"),
        ({"choices": {"x": "profile:/nonexistent.json"}}, InputError, "not found"),
    ],
)
def test_bad_choices_are_refused(loaded: Any, kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    args = {"quant": QUANT, **KW, **kwargs}
    with pytest.raises(error, match=match):
        compare_layer_choices(loaded, **args)


def test_cli_compare_writes_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse
    import json

    from orchestrator import profile_cli

    folder = save_tiny("qwen2", tmp_path / "q", layers=3)
    parser = argparse.ArgumentParser()
    profile_cli.add_profile_arguments(parser)
    out, data = tmp_path / "c.json", tmp_path / "held_out.jsonl"
    data.write_text(json.dumps({"question": "Ann has 3 pens and buys 4.", "answer": "3 + 4 = 7\n#### 7"}) + "\n")
    args = parser.parse_args(["--model", str(folder), "--quant", "rtn-int3", "--limit", "2", "--max-tokens", "24",
                              "--device", "cpu", "--out", str(out), "--no-progress", "--compare", "all",
                              "--compare", "0,2", "--data", str(data)])  # fmt: skip
    assert profile_cli.run_profile_command(args) == 0
    report = json.loads(out.read_text())
    assert [c["layers"] for c in report["choices"]] == [[0, 1, 2], [0, 2]] and report["n_texts"] == 1
    assert "| 0,2 | 0,2 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--compare", "all"], "--compare needs --data"),
        (["--compare", "all", "--data", "d.jsonl", "--plot", "p.png"], "--plot"),
        (["--compare", "profile:p.json", "--data", "d.jsonl", "--out", "p.json"], "is a profile being compared"),
        (["--compare", "profile:p.json", "--data", "d.jsonl", "--profile-layers", "0"], "--profile-layers"),
    ],
)
def test_cli_compare_refuses_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from orchestrator.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["profile", "--model", str(tmp_path / "no-model"), "--no-progress", *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_weights_are_put_back_when_a_pass_fails(loaded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.profile import _Calibration

    before = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
    real = _Calibration.divergence
    calls = {"n": 0}

    def failing(self: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # after the model was quantized and a layer restored
            raise RuntimeError("out of memory")
        return real(self, **kwargs)

    monkeypatch.setattr(_Calibration, "divergence", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        compare_layer_choices(loaded, quant=QUANT, choices={"x": [1, 2]}, **KW)
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
