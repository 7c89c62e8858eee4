"""High-precision layer copies: swap in, swap back bit-exactly, honest byte counts; and choosing layers."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from torch import nn

from orchestrator.errors import InputError, ModelNotFoundError, UnsupportedArchitectureError
from orchestrator.layer_choice import LayerProfile, LayerScore, choose_layers, read_profile
from orchestrator.precision import SUPPORTED_ARCHITECTURES, LayerPrecision
from orchestrator.quantize import decoder_layers, parse_quant, simulate_quantization_
from tests.tiny import ARCHS, save_tiny, tiny_config, tiny_model

LAYERS = 6  # Gemma 3 with 6 layers has 5 sliding layers and 1 full one: both kinds get exercised
IDS = torch.tensor([[1, 5, 9, 44, 100, 3, 77, 12]])


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reference")
    return {arch: save_tiny(arch, root / arch, layers=LAYERS) for arch in ARCHS}


def _quantized(arch: str) -> Any:
    model = tiny_model(arch, layers=LAYERS)
    simulate_quantization_(model, parse_quant("rtn-int3", group_size=32))
    return model


@torch.no_grad()
def _logits(model: Any, ids: torch.Tensor = IDS) -> torch.Tensor:
    return model(ids).logits


@pytest.mark.parametrize("arch", ARCHS)
def test_escalate_changes_logits_and_restore_is_bit_exact(arch: str, reference: dict[str, Path]) -> None:
    model = _quantized(arch)
    quantized = _logits(model)
    originals = list(decoder_layers(model))
    precision = LayerPrecision(model, reference[arch], [1, 3])
    assert precision.layers == (1, 3) and precision.active == ()
    precision.escalate()
    assert precision.active == (1, 3)
    assert decoder_layers(model)[1] is not originals[1]
    assert not torch.allclose(_logits(model), quantized)
    precision.restore()
    assert precision.active == ()
    assert all(a is b for a, b in zip(decoder_layers(model), originals, strict=True))
    assert torch.equal(_logits(model), quantized)


@pytest.mark.parametrize("arch", ARCHS)
def test_escalating_every_layer_gives_the_reference_exactly(arch: str, reference: dict[str, Path]) -> None:
    # Embeddings and lm_head are never quantized, so all layers swapped in is the reference model itself.
    model = _quantized(arch)
    with LayerPrecision(model, reference[arch], range(LAYERS)).escalated():
        escalated = _logits(model)
    assert torch.equal(escalated, _logits(tiny_model(arch, layers=LAYERS)))


@pytest.mark.parametrize("arch", ARCHS)
def test_reported_bytes_match_the_reference_tensors(arch: str, reference: dict[str, Path]) -> None:
    model = _quantized(arch)
    precision = LayerPrecision(model, reference[arch], [0, 5])
    with safe_open(str(reference[arch] / "model.safetensors"), framework="pt") as f:
        sizes = {
            i: sum(
                f.get_tensor(k).numel() * f.get_tensor(k).element_size()
                for k in f.keys()  # noqa: SIM118
                if k.startswith(f"model.layers.{i}.")
            )
            for i in (0, 5)
        }
    assert precision.bytes_per_layer == sizes
    assert precision.extra_bytes == sum(sizes.values()) > 0
    half = LayerPrecision(model, reference[arch], [0], dtype=torch.bfloat16)
    assert half.extra_bytes == sizes[0] // 2


@pytest.mark.parametrize("arch", ARCHS)
def test_kv_cache_from_before_the_swap_stays_valid(arch: str, reference: dict[str, Path]) -> None:
    # Fill the cache with all layers escalated, swap back and forth, then continue from that cache:
    # the next token's logits must match the reference run over the whole sequence.
    model = _quantized(arch)
    precision = LayerPrecision(model, reference[arch], range(LAYERS))
    prefix, last = IDS[:, :-1], IDS[:, -1:]
    with torch.no_grad():
        with precision.escalated():
            cache = model(prefix, use_cache=True).past_key_values
        with precision.escalated():
            step = model(last, past_key_values=cache, use_cache=True).logits[:, -1]
    full = _logits(tiny_model(arch, layers=LAYERS))[:, -1]
    torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)


def test_gemma3_copies_keep_their_sliding_or_full_attention(reference: dict[str, Path]) -> None:
    model = _quantized("gemma3")
    kinds = [layer.self_attn.is_sliding for layer in decoder_layers(model)]
    assert True in kinds and False in kinds  # the fixture really mixes both
    precision = LayerPrecision(model, reference["gemma3"], range(LAYERS))
    with precision.escalated():
        for i, layer in enumerate(decoder_layers(model)):
            assert layer.self_attn.layer_idx == i
            assert layer.self_attn.is_sliding == kinds[i]


def test_subsets_nesting_and_exceptions(reference: dict[str, Path]) -> None:
    model = _quantized("llama")
    quantized = _logits(model)
    precision = LayerPrecision(model, reference["llama"], [0, 2, 4])
    precision.escalate([2])
    assert precision.active == (2,)
    with precision.escalated([0, 2]):
        assert precision.active == (0, 2)
        with pytest.raises(RuntimeError), precision.escalated():
            assert precision.active == (0, 2, 4)
            raise RuntimeError("boom")
        assert precision.active == (0, 2)  # the inner block put back only what it swapped in
    assert precision.active == (2,)  # layer 2 was escalated before the outer block
    precision.restore()
    assert torch.equal(_logits(model), quantized)
    with pytest.raises(InputError, match=r"no high-precision copy of layers \[1\]"):
        precision.escalate([1])


def test_sharded_reference_is_read_through_its_index(tmp_path: Path) -> None:
    source = tiny_model("qwen2", layers=LAYERS)
    source.save_pretrained(tmp_path, safe_serialization=True, max_shard_size="200KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    model = _quantized("qwen2")
    with LayerPrecision(model, tmp_path, range(LAYERS)).escalated():
        assert torch.equal(_logits(model), _logits(source))


@pytest.mark.parametrize("arch", ["mistral", "qwen3", "gemma2"])
def test_other_supported_architectures(arch: str, tmp_path: Path) -> None:
    import transformers

    assert arch in SUPPORTED_ARCHITECTURES
    base = tiny_config("qwen2", layers=2).to_dict()
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "max_position_embeddings")  # fmt: skip
    cls = {"mistral": "MistralConfig", "qwen3": "Qwen3Config", "gemma2": "Gemma2Config"}[arch]
    config = getattr(transformers, cls)(**{k: base[k] for k in keep}, head_dim=16)
    torch.manual_seed(0)
    source = transformers.AutoModelForCausalLM.from_config(config).eval()
    source.save_pretrained(tmp_path)
    model = copy.deepcopy(source)
    simulate_quantization_(model, parse_quant("rtn-int3", group_size=32))
    assert not torch.equal(_logits(model), _logits(source))
    with LayerPrecision(model, tmp_path, [0, 1]).escalated():
        assert torch.equal(_logits(model), _logits(source))


@pytest.mark.bnb
def test_copies_replace_bitsandbytes_layers(reference: dict[str, Path]) -> None:
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForCausalLM

    from orchestrator.quantize import bnb_config

    model = AutoModelForCausalLM.from_pretrained(
        reference["llama"], quantization_config=bnb_config(parse_quant("bnb-nf4")),
        dtype=torch.float32, device_map="cpu",
    )  # fmt: skip
    quantized = _logits(model)
    precision = LayerPrecision(model, reference["llama"], range(LAYERS))
    assert type(decoder_layers(model)[0].mlp.up_proj).__name__ == "Linear4bit"
    with precision.escalated():
        assert type(decoder_layers(model)[0].mlp.up_proj) is nn.Linear
        torch.testing.assert_close(_logits(model), _logits(tiny_model("llama", layers=LAYERS)))
    assert torch.equal(_logits(model), quantized)


def test_errors_name_the_problem(reference: dict[str, Path], tmp_path: Path) -> None:
    model = _quantized("llama")
    with pytest.raises(InputError, match=r"layers \[6\] out of range"):
        LayerPrecision(model, reference["llama"], [6])
    with pytest.raises(ModelNotFoundError, match="not found"):
        LayerPrecision(model, tmp_path / "missing", [0])
    with pytest.raises(ModelNotFoundError, match=r"no model.safetensors"):
        LayerPrecision(model, tmp_path, [0])
    with pytest.raises(InputError, match="do not fit"):  # a Qwen2 layer has biases a Llama layer lacks
        LayerPrecision(model, reference["qwen2"], [0])

    class Mamba(nn.Module):
        config = type("Config", (), {"model_type": "mamba"})()

    with pytest.raises(UnsupportedArchitectureError, match=r"'mamba'.*supported: llama"):
        LayerPrecision(Mamba(), reference["llama"], [0])


# ------------------------------------------------------------------------------------ layer choice


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ([5, 1, 5], [1, 5]),  # sorted, duplicates dropped
        ("3, 7,11", [3, 7, 11]),  # comma list from a CLI flag
        ("all", list(range(24))),
        ("middle:0.25", list(range(9, 15))),  # 6 central layers of 24
        ("deep:0.25", list(range(18, 24))),
        ("shallow:0.125", [0, 1, 2]),
        ("deep:0.01", [23]),  # never empty for a positive fraction
        ("middle:1", list(range(24))),
    ],
)
def test_choose_layers(spec: Any, expected: list[int]) -> None:
    assert choose_layers(24, spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([24], r"layers \[24\] out of range"),
        ([-1], r"layers \[-1\] out of range"),
        ([], "empty"),
        ([1.5], "layer spec must be"),  # floats are not indices
        ("middle", "layer spec must be"),
        ("middle:0", r"fraction in \(0, 1\]"),
        ("deep:half", "fraction"),
        ("top:0.5", "layer spec must be"),
        ("profile:", "needs a path"),
    ],
)
def test_choose_layers_rejects_bad_specs(spec: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        choose_layers(24, spec)


def _write_profile(path: Path, layers: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"model": "tiny", "quant": "sim-nf4", "layers": layers}))
    return path


def test_profile_picks_the_layers_whose_restoring_helps_most(tmp_path: Path) -> None:
    scores = [0.9, 0.2, 0.5, 0.1, 0.7, 0.2]
    path = _write_profile(tmp_path / "p.json", [{"index": i, "restore_kl": s} for i, s in enumerate(scores)])
    assert choose_layers(6, f"profile:{path}", k=2) == [1, 3]  # ties (1 and 5) go to the lower index
    assert choose_layers(6, f"profile:{path}", k=10) == list(range(6))
    # Without restore_kl everywhere, rank by quant_kl, highest first.
    path = _write_profile(tmp_path / "q.json", [{"index": i, "quant_kl": s} for i, s in enumerate(scores)])
    assert choose_layers(6, f"profile:{path}", k=2) == [0, 4]


def test_profile_round_trips_through_json(tmp_path: Path) -> None:
    profile = LayerProfile("tiny", "rtn-int3", (LayerScore(0, 0.5, 0.1), LayerScore(1, quant_kl=0.3)))
    path = tmp_path / "p.json"
    path.write_text(profile.to_json())
    assert read_profile(path) == profile


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not readable JSON"),
        ('{"layers": 3}', "'layers' list"),
        ('{"layers": [{"restore_kl": 1}]}', "entry 0 needs a non-negative integer 'index'"),
        ('{"layers": [{"index": 0, "restore_kl": 1}, {"index": 0, "restore_kl": 2}]}', "listed twice"),
        ('{"layers": [{"index": 0, "restore_kl": "high"}]}', "non-numeric restore_kl"),
        ('{"layers": [{"index": 0}]}', "need restore_kl on every layer"),
        ('{"layers": [{"index": 9, "quant_kl": 1}]}', r"names layers \[9\]"),
    ],
)
def test_bad_profiles_are_explained(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        choose_layers(6, f"profile:{path}")
    with pytest.raises(InputError, match="not found"):
        choose_layers(6, f"profile:{tmp_path / 'missing.json'}")
