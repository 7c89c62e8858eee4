"""Cost of escalation by module swap: escalate + restore time, extra bytes per layer, copy build time.

Runs on a tiny model and on a model of the real Qwen2.5-1.5B shape (hidden 1536, intermediate 8960,
28 layers, 12 heads, 2 KV heads, vocab 151936) built from its config with random weights and saved as a
safetensors folder, so the copies are read the way they are in use. Swap time does not depend on the
weights' values, so the working model is not quantized here. With ``--matmul`` it also times one
1536×8960 linear at batch 1 in fp32 and as bitsandbytes NF4/INT8 modules (what QUANT_HELP's speed note
rests on).

    python benchmarks/bench_escalation.py --out bench_escalation.json
    python benchmarks/bench_escalation.py --layers 8 --dtype bf16   # fewer layers: less RAM and disk
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orchestrator.layer_choice import choose_layers
from orchestrator.precision import LayerPrecision

QWEN25_15B: dict[str, Any] = dict(
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    tie_word_embeddings=True,
)


def time_swaps(precision: LayerPrecision, repeats: int) -> dict[str, float]:
    """Microseconds for escalate(all copies) + restore(), over ``repeats`` rounds."""
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        precision.escalate()
        precision.restore()
        rounds.append((time.perf_counter_ns() - start) / 1e3)
    rounds.sort()
    return {
        "median_us": statistics.median(rounds),
        "p90_us": rounds[int(0.9 * (len(rounds) - 1))],
        "max_us": rounds[-1],
        "repeats": repeats,
    }


def bench_model(label: str, model: Any, folder: Path, layers: list[int], repeats: int) -> dict[str, Any]:
    start = time.perf_counter()
    precision = LayerPrecision(model, folder, layers)
    build_s = time.perf_counter() - start
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        before = model(ids).logits[0, -1]
        with precision.escalated():
            during = model(ids).logits[0, -1]
        after = model(ids).logits[0, -1]
    swaps = time_swaps(precision, repeats)
    return {
        "model": label,
        "layers_escalated": layers,
        "n_layers": len(model.model.layers),
        "dtype": str(next(model.parameters()).dtype),
        "escalate_restore": swaps,
        "goal_met_le_1ms": swaps["median_us"] <= 1000.0,
        "extra_bytes": precision.extra_bytes,
        "extra_bytes_per_layer": precision.bytes_per_layer[layers[0]],
        "extra_mib_per_layer": precision.bytes_per_layer[layers[0]] / 2**20,
        "build_copies_s": build_s,
        "restore_bit_exact": bool(torch.equal(before, after)),
        "escalation_changed_logits": not torch.equal(before, during),
    }


def tiny(repeats: int, tmp: Path) -> dict[str, Any]:
    from tests.tiny import save_tiny, tiny_model

    folder = save_tiny("qwen2", tmp / "tiny", seed=1, layers=8)
    model = tiny_model("qwen2", seed=0, layers=8)  # other random layer weights than the reference
    return bench_model("tiny qwen2 (hidden 64, 8 layers)", model, folder, list(range(8)), repeats)


def qwen_shape(layers: int, dtype: torch.dtype, repeats: int, tmp: Path) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, Qwen2Config

    config = Qwen2Config(**{**QWEN25_15B, "num_hidden_layers": layers})
    torch.manual_seed(0)
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    folder = tmp / "qwen"
    model.save_pretrained(folder, safe_serialization=True)
    setup_s = time.perf_counter() - start
    with torch.no_grad():  # working weights differ from the saved reference
        for p in model.model.layers.parameters():
            p.mul_(0.5)
    chosen = choose_layers(layers, "middle:0.3") if layers >= 8 else list(range(layers))
    chosen = chosen[:8] if len(chosen) >= 8 else list(range(min(8, layers)))
    label = f"Qwen2.5-1.5B shape, {layers} of 28 layers, random weights"
    result = bench_model(label, model, folder, chosen, repeats)
    result["setup_s"] = setup_s
    return result


def matmul(repeats: int) -> dict[str, Any]:
    """Milliseconds per 1536×8960 linear at batch 1: fp32 and bitsandbytes modules on this device."""
    import bitsandbytes as bnb

    def ms(layer: torch.nn.Module, x: torch.Tensor) -> float:
        with torch.no_grad():
            for _ in range(3):
                layer(x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                layer(x)
                times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)

    torch.manual_seed(0)
    dense = torch.nn.Linear(1536, 8960, bias=False)
    x = torch.randn(1, 1536)
    out: dict[str, Any] = {"shape": [1536, 8960], "batch": 1, "fp32_ms": ms(dense, x)}
    for quant_type in ("nf4", "fp4"):
        for compute in (torch.float32, torch.bfloat16):
            q = bnb.nn.Linear4bit(1536, 8960, bias=False, compute_dtype=compute, quant_type=quant_type)
            q.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, quant_type=quant_type)
            q = q.to("cpu")
            name = f"bnb_{quant_type}_{str(compute).split('.')[-1]}_ms"
            out[name] = ms(q, x.to(compute))
    q8 = bnb.nn.Linear8bitLt(1536, 8960, bias=False, has_fp16_weights=False)
    q8.weight = bnb.nn.Int8Params(dense.weight.data.clone(), requires_grad=False, has_fp16_weights=False)
    out["bnb_int8_ms"] = ms(q8.to("cpu"), x)
    out["slowdown_vs_fp32"] = {k: v / out["fp32_ms"] for k, v in out.items() if k.startswith("bnb_")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_escalation.json", help="where to write the JSON results")
    parser.add_argument("--layers", type=int, default=28, help="layers of the Qwen2.5-1.5B-shaped model")
    parser.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="weights of the big model")
    parser.add_argument("--repeats", type=int, default=2000, help="escalate+restore rounds timed")
    parser.add_argument("--skip-big", action="store_true", help="tiny model only")
    parser.add_argument("--matmul", action="store_true", help="also time fp32 vs bitsandbytes linears")
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    results: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": torch.get_num_threads()},
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = [lambda: tiny(args.repeats, tmp)]
        if not args.skip_big:
            dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
            runs.append(lambda: qwen_shape(args.layers, dtype, args.repeats, tmp))
        for run in runs:
            result = run()
            results["runs"].append(result)
            swaps = result["escalate_restore"]
            print(
                f"{result['model']} [{result['dtype']}]: escalate+restore of {len(result['layers_escalated'])} "
                f"layers median {swaps['median_us']:.1f} µs (p90 {swaps['p90_us']:.1f}); "
                f"{result['extra_mib_per_layer']:.2f} MiB per layer, {result['extra_bytes'] / 2**20:.1f} MiB "
                f"in all; copies built in {result['build_copies_s']:.2f} s; "
                f"restore bit-exact: {result['restore_bit_exact']}"
            )
    if args.matmul:
        results["matmul"] = matmul(repeats=20)
        print("1536×8960 linear at batch 1 (ms):", {k: round(v, 2) for k, v in results["matmul"].items()
                                                      if k.endswith("_ms")})  # fmt: skip
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
