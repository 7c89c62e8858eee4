"""Simulated quantizers against bitsandbytes' own kernels, RTN's error bound, and in-place model rounding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from orchestrator.errors import QuantizationError
from orchestrator.quantize import (
    QUANT_HELP,
    QUANT_NAMES,
    check_device_supports,
    decoder_layers,
    fp4_roundtrip,
    int8_rowwise_roundtrip,
    nf4_roundtrip,
    parse_quant,
    roundtrip,
    rtn_roundtrip,
    rtn_scale,
    simulate_quantization_,
)
from tests.tiny import save_tiny, tiny_model

# Shapes: even, ragged against the 64-block (37*70 = 2590 = 40*64 + 30), tiny, and one row.
SHAPES = [(64, 128), (37, 70), (3, 5), (1, 64)]
DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _bnb() -> Any:
    return pytest.importorskip("bitsandbytes.functional")


# ------------------------------------------------------------------------------------------- names


def test_every_name_parses_and_has_help() -> None:
    for name in QUANT_NAMES:
        spec = parse_quant(name)
        assert spec.name == name
        assert QUANT_HELP[name] == spec.help and spec.help
    assert {"none", "sim-nf4", "sim-int8", "bnb-nf4", "bnb-fp4", "bnb-int8"} <= set(QUANT_NAMES)
    assert {f"rtn-int{b}" for b in range(2, 9)} <= set(QUANT_NAMES)


def test_bnb_help_is_honest_about_cpu_speed() -> None:
    for name in ("bnb-nf4", "bnb-fp4", "bnb-int8"):
        assert "slower than fp32" in QUANT_HELP[name]


@pytest.mark.parametrize(
    ("name", "group", "expected"),
    [
        ("rtn-int3", 32, ("sim", 3, 32, "rtn")),  # rtn takes the requested group
        ("RTN-INT4", 128, ("sim", 4, 128, "rtn")),  # case-insensitive
        ("sim-nf4", 32, ("sim", 4, 64, "nf4")),  # NF4's block is bnb's 64 whatever the group
        ("sim-int8", 32, ("sim", 8, -1, "int8-rowwise")),  # one scale per row
        ("bnb-fp4", 128, ("bnb", 4, 64, "fp4")),
        ("none", 128, ("none", 16, 0, "none")),
    ],
)
def test_parse_quant_fields(name: str, group: int, expected: tuple[str, int, int, str]) -> None:
    spec = parse_quant(name, group_size=group)
    assert (spec.kind, spec.bits, spec.group_size, spec.method) == expected


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(QuantizationError, match=r"unknown quantization 'int4'.*sim-nf4.*rtn-int2"):
        parse_quant("int4")


@pytest.mark.parametrize("group", [0, -8])
def test_bad_group_size_is_rejected(group: int) -> None:
    with pytest.raises(QuantizationError, match="group size"):
        parse_quant("rtn-int4", group_size=group)


# ------------------------------------------------------------------------- equal to bitsandbytes


@pytest.mark.bnb
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_4bit_roundtrip_equals_bitsandbytes(shape: tuple[int, int], dtype: torch.dtype, quant_type: str) -> None:
    F = _bnb()
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    packed, state = F.quantize_4bit(w, blocksize=64, quant_type=quant_type)
    theirs = F.dequantize_4bit(packed, state)
    ours = (nf4_roundtrip if quant_type == "nf4" else fp4_roundtrip)(w)
    assert ours.dtype == dtype
    # bnb's CPU path computes in fp32 and casts to the input dtype, as we do: bit-identical.
    assert torch.equal(ours, theirs.to(dtype))


@pytest.mark.bnb
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_int8_rowwise_equals_bitsandbytes(shape: tuple[int, int], dtype: torch.dtype) -> None:
    F = _bnb()
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(2)).to(dtype)
    codes, stats, outliers = F.int8_vectorwise_quant(w.clone())  # threshold 0: no outlier columns
    assert outliers is None
    theirs = F.int8_vectorwise_dequant(codes, stats)  # always fp32
    assert torch.equal(int8_rowwise_roundtrip(w), theirs.to(dtype))


def test_int8_rowwise_keeps_a_zero_row_zero() -> None:
    w = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    out = int8_rowwise_roundtrip(w)
    assert torch.equal(out[0], torch.zeros(2)) and torch.isfinite(out).all()


def test_nf4_values_come_from_the_code_book() -> None:
    w = torch.randn(4, 64)
    out = nf4_roundtrip(w)
    scaled = out / w.abs().amax(dim=1, keepdim=True)  # one 64-block per row here
    assert len(torch.unique(scaled.round(decimals=5), dim=None)) <= 16


# --------------------------------------------------------------------------------------- RTN bound


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(2, 8),
    group=st.sampled_from([1, 3, 8, 32, 128]),
    rows=st.integers(1, 4),
    cols=st.integers(1, 80),
    scale=st.floats(1e-3, 1e3),
    offset=st.floats(-2.0, 2.0),
    seed=st.integers(0, 2**16),
)
def test_rtn_error_within_half_a_step(
    bits: int, group: int, rows: int, cols: int, scale: float, offset: float, seed: int
) -> None:
    # Weights of any sign mix (offset shifts whole groups positive or negative), magnitude and raggedness.
    w = (torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) + offset) * scale
    q = rtn_roundtrip(w, bits, group)
    step = rtn_scale(w, bits, group)
    assert (w - q).abs().le(step / 2 * (1 + 1e-5) + 1e-6 * w.abs()).all()
    # Each group holds at most 2**bits distinct values.
    g = min(group, cols)
    for start in range(0, cols, g):
        for r in range(rows):
            assert torch.unique(q[r, start : start + g]).numel() <= 2**bits


def test_rtn_int8_is_finer_than_int2() -> None:
    w = torch.randn(16, 256, generator=torch.Generator().manual_seed(3))
    errors = [(w - rtn_roundtrip(w, b, 64)).abs().mean().item() for b in range(2, 9)]
    assert errors == sorted(errors, reverse=True)


def test_rtn_keeps_zeros_and_dtype() -> None:
    w = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 0.5, -1.0, 2.0]], dtype=torch.bfloat16)
    out = rtn_roundtrip(w, 3, group_size=4)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out[0], w[0]) and out[1, 0] == 0


@pytest.mark.parametrize("bits", [1, 9])
def test_rtn_rejects_bit_widths_outside_2_to_8(bits: int) -> None:
    with pytest.raises(QuantizationError, match=r"2..8"):
        rtn_roundtrip(torch.ones(2, 2), bits)


# ------------------------------------------------------------------------------------ model level


def _linear_weights(model: Any) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, nn.Linear)}


@pytest.mark.parametrize("name", ["sim-nf4", "sim-fp4", "sim-int8", "rtn-int4"])
def test_simulate_rounds_only_decoder_linears(name: str) -> None:
    model = tiny_model("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = parse_quant(name, group_size=32)
    report = simulate_quantization_(model, spec)
    after = model.state_dict()
    linears = {n + ".weight" for n, m in decoder_layers(model).named_modules() if isinstance(m, nn.Linear)}
    for key, old in before.items():
        rounded = key.startswith("model.layers.") and key.removeprefix("model.layers.") in linears
        if rounded:
            assert torch.equal(after[key], roundtrip(old, spec)), key
            assert not torch.equal(after[key], old), key
        else:  # embeddings, lm_head, norms
            assert torch.equal(after[key], old), key
    assert report.layers == (0, 1, 2, 3) and report.n_tensors == 4 * 7
    assert report.n_params == sum(before[k].numel() for k in before if k.endswith("proj.weight"))
    assert 0 < report.mean_abs_error <= report.max_abs_error and 0 < report.rel_error < 1


def test_simulate_on_chosen_layers_leaves_the_rest() -> None:
    model = tiny_model("qwen2")
    before = _linear_weights(model)
    report = simulate_quantization_(model, parse_quant("rtn-int3", 32), layers=[2])
    after = _linear_weights(model)
    changed = {n.split(".")[2] for n in before if not torch.equal(before[n], after[n])}
    assert changed == {"2"} and report.layers == (2,)


def test_simulate_none_changes_nothing_and_bnb_is_refused() -> None:
    model = tiny_model("gemma3")
    before = _linear_weights(model)
    assert simulate_quantization_(model, parse_quant("none")).n_tensors == 0
    assert all(torch.equal(v, _linear_weights(model)[k]) for k, v in before.items())
    with pytest.raises(QuantizationError, match=r"bnb_config.*sim-nf4"):
        simulate_quantization_(model, parse_quant("bnb-nf4"))
    with pytest.raises(QuantizationError, match="out of range"):
        simulate_quantization_(model, parse_quant("sim-nf4"), layers=[4])


def test_decoder_layers_names_a_model_without_them() -> None:
    with pytest.raises(QuantizationError, match=r"Linear .*model.model.layers"):
        decoder_layers(nn.Linear(2, 2))


# ---------------------------------------------------------------------------------- bitsandbytes


def test_check_device_supports() -> None:
    for name in QUANT_NAMES:  # simulated ones run anywhere
        if not name.startswith("bnb"):
            check_device_supports(parse_quant(name), "mps")
    with pytest.raises(QuantizationError, match=r"cannot run on 'mps'.*sim-nf4"):
        check_device_supports(parse_quant("bnb-nf4"), "mps")
    if not torch.cuda.is_available():
        with pytest.raises(QuantizationError, match="no CUDA device"):
            check_device_supports(parse_quant("bnb-int8"), "cuda:0")


@pytest.mark.bnb
def test_bnb_config_fields() -> None:
    pytest.importorskip("bitsandbytes")
    from orchestrator.quantize import bnb_config

    four = bnb_config(parse_quant("bnb-fp4"), compute_dtype=torch.bfloat16)
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "fp4"
    assert four.bnb_4bit_compute_dtype == torch.bfloat16 and not four.bnb_4bit_use_double_quant
    assert bnb_config(parse_quant("bnb-int8")).load_in_8bit
    with pytest.raises(QuantizationError, match="not a bitsandbytes"):
        bnb_config(parse_quant("sim-nf4"))


@pytest.mark.bnb
@pytest.mark.parametrize("name", ["bnb-nf4", "bnb-fp4", "bnb-int8"])
def test_bnb_model_loads_and_runs_on_cpu_like_its_sim_twin(name: str, tmp_path: Path) -> None:
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForCausalLM

    from orchestrator.quantize import bnb_config

    spec = parse_quant(name)
    check_device_supports(spec, "cpu")
    folder = save_tiny("llama", tmp_path / "llama")
    real = AutoModelForCausalLM.from_pretrained(
        folder, quantization_config=bnb_config(spec), dtype=torch.float32, device_map="cpu"
    )
    sim = tiny_model("llama")
    simulate_quantization_(sim, parse_quant("sim-" + name[4:]))
    ids = torch.tensor([[1, 2, 3, 40, 50]])
    with torch.no_grad():
        got, want = real(ids).logits, sim(ids).logits
    if spec.bits == 4 and not _bnb_cpu_runs_4bit_in_bf16():  # same weights, both matmuls in fp32
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    elif spec.bits == 4:  # same weights; bnb's fused CPU kernel rounds activations to bf16 (8 bits of mantissa)
        assert (got - want).abs().max() < 0.02 * want.abs().max()
    else:  # bnb-int8 also rounds activations (fp16, int8): close, not equal
        assert (got - want).abs().max() < 0.05 * want.abs().max()


def _bnb_cpu_runs_4bit_in_bf16() -> bool:
    """bitsandbytes takes a fused bf16 kernel for 4-bit layers on CPUs with AVX512-BF16 (recent Xeon, EPYC),
    plain fp32 matmuls of the dequantized weights elsewhere."""
    try:
        from bitsandbytes.functional import has_avx512bf16
    except ImportError:  # before bitsandbytes 0.49: no fused CPU kernel
        return False
    return bool(has_avx512bf16())
