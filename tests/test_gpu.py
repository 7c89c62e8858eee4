"""The CUDA paths: the same numerics and the same tokens on a GPU, real bitsandbytes kernels, layer swaps there.

Skipped where no CUDA device is present (CI has none): run them on a GPU machine with ``pytest -m gpu``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from orchestrator.api import Orchestrator
from orchestrator.decoding import sample_tokens, sampling_probs
from orchestrator.generation import StepGenerator
from orchestrator.loading import load
from orchestrator.precision import LayerPrecision, tensor_bytes
from orchestrator.quantize import decoder_layers, fp4_roundtrip, nf4_roundtrip, parse_quant, roundtrip, rtn_scale
from orchestrator.steps import Sampling
from tests.test_batching import QUESTIONS, eager_policy, within
from tests.tiny import byte_tokenizer, save_tiny, tiny_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
CUDA = "cuda"
PROMPTS = ["Q: 2 + 2 =", "Q: A farmer has 17 sheep and buys 5 more. How many now?\nA:", "Q: 9 x 9"]


def _logits(model: Any) -> torch.Tensor:
    ids = torch.tensor([[5, 17, 42, 99, 3, 250, 7, 64]], device=next(model.parameters()).device)
    with torch.no_grad():
        return model(ids).logits.float()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny("qwen2", tmp_path_factory.mktemp("gpu") / "qwen2", layers=4)


@pytest.mark.bnb
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_simulated_nf4_equals_the_bitsandbytes_cuda_kernel(dtype: torch.dtype) -> None:
    F = pytest.importorskip("bitsandbytes.functional")
    w = torch.randn(384, 512, generator=torch.Generator().manual_seed(3)).to(dtype)
    packed, state = F.quantize_4bit(w.to(CUDA), blocksize=64, quant_type="nf4")
    ours = nf4_roundtrip(w.to(CUDA))
    assert ours.device.type == "cuda" and ours.dtype == dtype
    assert torch.equal(ours, F.dequantize_4bit(packed, state).to(dtype))  # sim-nf4 on a GPU is what bnb-nf4 stores
    assert torch.equal(ours.cpu(), nf4_roundtrip(w))  # and the same on a CPU


@pytest.mark.bnb
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_simulated_fp4_matches_the_cuda_kernel_but_for_a_few_boundary_weights(dtype: torch.dtype) -> None:
    """bnb's CUDA FP4 quantizer picks codes through a threshold tree; its CPU path, which sim-fp4 equals bit for
    bit (tests/test_quantize.py), takes the nearest code. They part on a few weights near a threshold
    (measured on an H100: 0.0005% in fp32, 0.009% in fp16, 0.07% in bf16), at no cost in error."""
    F = pytest.importorskip("bitsandbytes.functional")
    w = torch.randn(384, 512, generator=torch.Generator().manual_seed(3)).to(dtype)
    packed, state = F.quantize_4bit(w.to(CUDA), blocksize=64, quant_type="fp4")
    theirs = F.dequantize_4bit(packed, state).to(dtype).float()
    ours = fp4_roundtrip(w.to(CUDA)).float()
    exact = w.to(CUDA).float()
    assert float((ours != theirs).float().mean()) < 2e-3
    ours_err, their_err = float((ours - exact).abs().mean()), float((theirs - exact).abs().mean())
    assert ours_err == pytest.approx(their_err, rel=1e-5)
    assert torch.equal(ours.cpu(), fp4_roundtrip(w).float())


@pytest.mark.parametrize("quant", ["rtn-int3", "rtn-int4", "sim-int8"])
def test_simulated_rounding_on_cuda_lands_on_the_same_levels_as_on_the_cpu(quant: str) -> None:
    """The same level for every weight; the values may differ in the last bit (float rounding of the
    dequantized ``scale * (q - zero)``: about half of RTN's values on an H100), never by a level."""
    spec = parse_quant(quant)
    w = torch.randn(256, 384, generator=torch.Generator().manual_seed(4))
    on_gpu, on_cpu = roundtrip(w.to(CUDA), spec).cpu(), roundtrip(w, spec)
    rowwise = w.abs().amax(1, keepdim=True) / 127  # sim-int8's step: the row's absmax over 127
    step = rtn_scale(w, spec.bits, spec.group_size) if spec.method == "rtn" else rowwise
    assert float(((on_gpu - on_cpu).abs() / step).max()) < 1e-4


@pytest.mark.bnb
def test_escalation_swaps_real_bitsandbytes_layers_on_the_gpu(folder: Path) -> None:
    pytest.importorskip("bitsandbytes")
    working = load(str(folder), quant="bnb-nf4", device=CUDA, progress=False).model
    reference = load(str(folder), quant="none", device=CUDA, progress=False).model
    blocks = decoder_layers(working)
    assert type(blocks[0].mlp.up_proj).__name__ == "Linear4bit" and blocks[0].mlp.up_proj.weight.device.type == "cuda"
    quantized = _logits(working)
    originals = list(blocks)
    torch.cuda.synchronize()
    allocated = torch.cuda.memory_allocated()
    precision = LayerPrecision(working, folder, range(len(blocks)))
    grown = torch.cuda.memory_allocated() - allocated
    assert precision.extra_bytes == sum(tensor_bytes(b) for b in decoder_layers(reference))
    assert grown <= precision.extra_bytes + 2**20  # only the copies' tensors: nothing else reloaded
    with precision.escalated():
        assert type(blocks[0].mlp.up_proj) is torch.nn.Linear
        assert blocks[0].mlp.up_proj.weight.device.type == "cuda"
        torch.testing.assert_close(_logits(working), _logits(reference))
    assert all(a is b for a, b in zip(blocks, originals, strict=True))
    assert torch.equal(_logits(working), quantized)  # swapped back bit for bit


def test_steps_on_the_gpu_equal_those_on_the_cpu() -> None:
    tok = byte_tokenizer()
    cpu = StepGenerator(tiny_model("llama"), tok, boundary="newline")
    gpu = StepGenerator(tiny_model("llama").to(CUDA), tok, boundary="newline")
    assert gpu.device.type == "cuda"
    on_cpu, on_gpu = cpu.start(PROMPTS), gpu.start(PROMPTS)
    for _ in range(3):
        a = cpu.propose(on_cpu, sampling=Sampling(max_step_tokens=12))
        b = gpu.propose(on_gpu, sampling=Sampling(max_step_tokens=12))
        assert [[c.token_ids for c in q] for q in a] == [[c.token_ids for c in q] for q in b]
        for x, y in zip(a, b, strict=True):
            for s, t in zip(x, y, strict=True):
                assert s.logprobs == pytest.approx(t.logprobs, abs=1e-3)
                assert s.entropies == pytest.approx(t.entropies, abs=1e-3)
        cpu.accept(on_cpu)
        gpu.accept(on_gpu)
    assert on_cpu.token_ids(1) == on_gpu.token_ids(1)


def test_sampled_tokens_on_the_gpu_equal_those_on_the_cpu_for_the_same_seeds() -> None:
    """The uniforms come from each row's host generator, so only the rounding of the softmax and the cumulative
    sums differs between devices: a draw would change only for a uniform within ~1e-7 of a bin's edge."""
    logits = torch.randn(8, 151936, generator=torch.Generator().manual_seed(5)) * 4
    dists = [sampling_probs(logits[i], 0.7, 0.95 if i % 2 else 1.0) for i in range(8)]
    on_gpu = [sampling_probs(logits[i].to(CUDA), 0.7, 0.95 if i % 2 else 1.0) for i in range(8)]
    cpu_gens = [torch.Generator().manual_seed(i) for i in range(8)]
    gpu_gens = [torch.Generator().manual_seed(i) for i in range(8)]
    for _ in range(200):
        assert sample_tokens(on_gpu, gpu_gens) == sample_tokens(dists, cpu_gens)


def test_merged_proposals_on_the_gpu_equal_each_alone() -> None:
    gen = StepGenerator(tiny_model("qwen2").to(CUDA), byte_tokenizer(), boundary="newline")
    requests = [
        (1, Sampling(max_step_tokens=12)),
        (4, Sampling(temperature=0.8, top_p=0.9, seed=3, max_step_tokens=20)),  # candidates beside a greedy row
        (2, Sampling(max_step_tokens=5)),
    ]
    together = [gen.start(p) for p in PROMPTS]
    alone = [gen.start(p) for p in PROMPTS]
    for _ in range(3):
        merged = gen.propose_together([(s, n, samp) for s, (n, samp) in zip(together, requests, strict=True)])
        for k, (session, (n, samp)) in enumerate(zip(alone, requests, strict=True)):
            solo = gen.propose(session, n=n, sampling=samp)
            assert [[c.token_ids for c in q] for q in merged[k]] == [[c.token_ids for c in q] for q in solo]
            if solo[0]:  # a sampled row may have ended its answer
                gen.accept(session, n - 1)
                gen.accept(together[k], n - 1)
    assert [s.token_ids() for s in alone] == [s.token_ids() for s in together]


def test_concurrent_orchestrated_solves_on_the_gpu(folder: Path) -> None:
    lm = load(str(folder), quant="rtn-int3", device=CUDA, progress=False)
    orch = Orchestrator(lm, policy=eager_policy())
    blocks = list(decoder_layers(lm.model))
    one_by_one = within(600, lambda: orch.solve_many(QUESTIONS))
    together = within(600, lambda: orch.solve_many(QUESTIONS, concurrency=4))
    same = ("text", "answer", "interventions", "tokens_spent")
    for a, b in zip(one_by_one, together, strict=True):
        assert [getattr(a, k) for k in same] == [getattr(b, k) for k in same]
    fired = {kind for r in together for kind in r.interventions}
    assert "escalate" in fired  # the swap ran on the GPU
    assert all(a is b for a, b in zip(decoder_layers(lm.model), blocks, strict=True))  # and was undone
