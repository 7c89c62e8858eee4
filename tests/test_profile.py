"""``qslm profile`` on tiny random models: file format, KL sanity, exact restoration, batching."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from orchestrator import profile as prof
from orchestrator import profile_cli
from orchestrator.errors import InputError, QuantizationError
from orchestrator.layer_choice import choose_layers, read_profile
from orchestrator.loading import load
from orchestrator.quantize import parse_quant, simulate_quantization_
from tests.tiny import save_tiny

QUANT = "rtn-int3"  # coarse enough that every layer moves the logits
TEXTS = [t[: 15 + 9 * i] for i, t in enumerate(prof.calibration_texts(limit=4))]  # 15..42 bytes: padding
KW: dict[str, Any] = dict(texts=TEXTS, max_tokens=40, batch_size=3, progress=False)  # 3: a short last batch


def _load(folder: Path) -> Any:
    return load(str(folder), quant="none", device="cpu", progress=False)


def _weights(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, prof.Profile, dict[str, torch.Tensor]]:
    folder = save_tiny("qwen2", tmp_path_factory.mktemp("tiny") / "qwen2", layers=4)
    loaded = _load(folder)
    before = _weights(loaded.model)
    return loaded, prof.run_profile(loaded, quant=QUANT, **KW), before


def test_weights_bit_identical_after_profiling(profiled: Any) -> None:
    loaded, _, before = profiled
    after = loaded.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_kl_values_are_sane(profiled: Any) -> None:
    _, p, _ = profiled
    assert len(p.layers) == 4 and [s.index for s in p.layers] == [0, 1, 2, 3]
    assert p.full_kl > 0 and 0 <= p.top1_agreement < 1
    for s in p.layers:
        assert s.quant_kl >= 0 and s.restore_kl >= 0
        assert s.quant_kl < p.full_kl * 1.5  # one layer rounded hurts less than all of them (with slack)
        assert 0 <= s.quant_top1 <= 1 and 0 <= s.restore_top1 <= 1
    assert any(s.quant_kl > 1e-3 for s in p.layers)
    assert any(s.restore_kl < p.full_kl for s in p.layers)  # restoring some layer helps


def test_file_round_trips_and_drives_layer_choice(profiled: Any, tmp_path: Path) -> None:
    _, p, _ = profiled
    path = p.write_profile(tmp_path / "profile.json")
    layer_profile = read_profile(path)
    assert layer_profile.quant == QUANT
    assert [s.restore_kl for s in layer_profile.layers] == [s.restore_kl for s in p.layers]
    best_two = sorted(s.index for s in sorted(p.layers, key=lambda s: (s.restore_kl, s.index))[:2])
    assert choose_layers(4, f"profile:{path}", k=2) == best_two
    assert prof.load_profile(path) == p
    data = json.loads(path.read_text())
    assert {"full_kl", "top1_agreement", "classes", "n_tokens", "group_size"} <= data.keys()


def test_class_table_adds_up(profiled: Any) -> None:
    _, p, _ = profiled
    assert set(p.classes) == set(prof.CLASSES)
    assert sum(c.tokens for c in p.classes.values()) == p.n_tokens > 0
    mean_kl = sum(c.kl * c.tokens for c in p.classes.values()) / p.n_tokens
    flips = sum(c.top1_flip_rate * c.tokens for c in p.classes.values()) / p.n_tokens
    assert mean_kl == pytest.approx(p.full_kl, rel=1e-6)
    assert flips == pytest.approx(1 - p.top1_agreement, abs=1e-6)
    assert p.classes["number"].tokens > 0


def test_one_layer_model_restoring_everything_gives_zero(tmp_path: Path) -> None:
    loaded = _load(save_tiny("llama", tmp_path / "one", layers=1))
    p = prof.run_profile(loaded, quant=QUANT, **KW)
    (only,) = p.layers
    assert only.restore_kl == pytest.approx(0.0, abs=1e-9)  # every layer restored: the reference itself
    assert only.restore_top1 == 1.0
    assert only.quant_kl == pytest.approx(p.full_kl, rel=1e-6)  # only layer quantized = all quantized


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_starting_at_a_layer_matches_a_full_pass(arch: str, tmp_path: Path) -> None:
    # the per-layer passes reuse cached inputs of the varied layer; they must equal a full forward
    loaded = _load(save_tiny(arch, tmp_path / arch, layers=3))
    calib = prof._Calibration(loaded.model, loaded.tokenizer, TEXTS, max_tokens=32, batch_size=3, top_k=0)
    calib.record_reference()
    simulate_quantization_(loaded.model, parse_quant(QUANT), layers=[2])
    skipped, full = calib.divergence(start=2), calib.divergence(start=0)
    assert torch.allclose(skipped.kl, full.kl, atol=1e-9)
    assert full.mean_kl > 0


def test_padding_does_not_change_the_numbers(tmp_path: Path) -> None:
    # right-padded batches of texts of different lengths give the distributions of one text at a time
    loaded = _load(save_tiny("qwen2", tmp_path / "q", layers=2))
    single = prof._Calibration(loaded.model, loaded.tokenizer, TEXTS, max_tokens=32, batch_size=1, top_k=0)
    batched = prof._Calibration(loaded.model, loaded.tokenizer, TEXTS, max_tokens=32, batch_size=4, top_k=0)
    single.record_reference()
    batched.record_reference()
    assert torch.allclose(torch.cat(single._ref_logp), torch.cat(batched._ref_logp), atol=1e-4)


def test_top_k_kl_is_a_close_lower_bound(tmp_path: Path) -> None:
    loaded = _load(save_tiny("qwen2", tmp_path / "q", layers=2))
    exact = prof._Calibration(loaded.model, loaded.tokenizer, TEXTS, max_tokens=32, batch_size=4, top_k=0)
    coarse = prof._Calibration(loaded.model, loaded.tokenizer, TEXTS, max_tokens=32, batch_size=4, top_k=16)
    exact.record_reference()
    coarse.record_reference()
    simulate_quantization_(loaded.model, parse_quant(QUANT))
    e, c = exact.divergence(), coarse.divergence()
    assert torch.all(c.kl <= e.kl + 1e-9)  # merging the tail can only lose divergence
    assert c.mean_kl > 0.5 * e.mean_kl
    assert torch.equal(c.agree, e.agree)


def test_weights_restored_when_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _load(save_tiny("qwen2", tmp_path / "q", layers=2))
    before = _weights(loaded.model)
    real = prof._Calibration.divergence
    calls = {"n": 0}

    def flaky(self: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # inside the restore loop, with every layer rounded
            raise KeyboardInterrupt
        return real(self, **kwargs)

    monkeypatch.setattr(prof._Calibration, "divergence", flaky)
    with pytest.raises(KeyboardInterrupt):
        prof.run_profile(loaded, quant=QUANT, **KW)
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_an_interrupted_profile_resumes_from_its_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _load(save_tiny("qwen2", tmp_path / "q", layers=3))
    whole = prof.run_profile(loaded, quant=QUANT, **KW)
    ckpt = tmp_path / "p.json.partial"
    real = prof._Calibration.divergence
    calls = {"n": 0}

    def killed_at_five(self: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 5:  # 3 quantize passes and the full pass are done, no restore pass yet
            raise KeyboardInterrupt
        return real(self, **kwargs)

    monkeypatch.setattr(prof._Calibration, "divergence", killed_at_five)
    with pytest.raises(KeyboardInterrupt):
        prof.run_profile(loaded, quant=QUANT, checkpoint=ckpt, **KW)
    kept = ckpt.read_text().splitlines()
    assert len(kept) == 1 + 3 and '"settings"' in kept[0]  # the header and the three quantize passes
    with ckpt.open("a") as fh:
        fh.write('{"pass": "restore", "lay')  # a line torn by a kill
    calls["n"] = -1000
    resumed = prof.run_profile(loaded, quant=QUANT, checkpoint=ckpt, **KW)
    assert calls["n"] == -1000 + 1 + 3  # the full pass and the three restore passes: no quantize pass again
    assert resumed.layers == whole.layers and resumed.full_kl == whole.full_kl
    assert not ckpt.exists()  # removed once the profile is done

    prof.run_profile(loaded, quant=QUANT, checkpoint=ckpt, **KW)  # fresh start, then other settings
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        prof.run_profile(loaded, quant=QUANT, checkpoint=ckpt, **KW)
    calls["n"] = -1000
    prof.run_profile(loaded, quant="rtn-int4", checkpoint=ckpt, **KW)
    assert calls["n"] == -1000 + 3 + 1 + 3  # another quantization: nothing reused


@pytest.mark.parametrize(
    ("quant", "error", "words"),
    [
        ("bnb-nf4", QuantizationError, "simulated"),  # real bnb modules cannot be rounded layer by layer
        ("none", QuantizationError, "name one"),  # nothing to compare against
        ("sim-nf5", QuantizationError, "unknown"),  # not a quantization
    ],
)
def test_bad_quantizations(quant: str, error: type, words: str, profiled: Any) -> None:
    loaded, _, _ = profiled
    with pytest.raises(error, match=words):
        prof.run_profile(loaded, quant=quant, **KW)


def test_refuses_a_quantized_model(tmp_path: Path) -> None:
    folder = save_tiny("qwen2", tmp_path / "q", layers=2)
    quantized = load(str(folder), quant="sim-nf4", device="cpu", progress=False)
    with pytest.raises(InputError, match="unquantized"):
        prof.run_profile(quantized, quant=QUANT, **KW)
    quantized.quant = parse_quant("none")  # lying about it: the weights give it away
    with pytest.raises(InputError, match="differs from the reference"):
        prof.run_profile(quantized, quant=QUANT, **KW)


def test_calibration_texts_from_gsm8k(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    rows = [{"question": f"Q{i}?", "answer": f"She has 2*3=<<2*3=6>>6.\n#### {i}"} for i in range(5)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    texts = prof.calibration_texts(path, limit=3)
    assert texts == [f"Q{i}?\nShe has 2*3=6.\n#### {i}" for i in range(3)]
    assert len(prof.calibration_texts(limit=5)) == 5  # the synthetic suite by default
    with pytest.raises(InputError):
        prof.calibration_texts(tmp_path / "missing.jsonl")


def test_cli_command_writes_profile_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = save_tiny("qwen2", tmp_path / "q", layers=2)
    parser = argparse.ArgumentParser()
    profile_cli.add_profile_arguments(parser)
    out, png = tmp_path / "p.json", tmp_path / "p.png"
    args = parser.parse_args(["--model", str(folder), "--quant", "sim-nf4", "--limit", "3", "--max-tokens", "24",
                              "--device", "cpu", "--out", str(out), "--plot", str(png), "--no-progress"])  # fmt: skip
    assert profile_cli.run_profile_command(args) == 0
    assert choose_layers(2, f"profile:{out}", k=1)[0] in (0, 1)
    printed = capsys.readouterr()
    assert "most worth restoring" in printed.out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not png.exists() and "matplotlib" in printed.err
    else:
        assert png.read_bytes()[:4] == b"\x89PNG"
