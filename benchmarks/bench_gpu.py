"""GPU figures on random weights of the catalog models' real shapes (configs in ``benchmarks/configs/``).

Per shape, side by side in one run:
- decode speed of ``generate`` (dynamic cache, batch 1) against the step generator at batch 1, and the step
  generator's batched candidates (n = 4, 8, 16 sampled rows of one question) in tokens per second;
- the same for real bitsandbytes NF4 modules and for sim-nf4 (weights rounded, kept in bf16);
- escalation on the NF4 model: extra GPU memory for the copies of the policy's default layers, escalate +
  restore time, and decode speed while escalated;
- one orchestrated solve (default policy; random weights make every step uncertain, so this is the cost of a
  solve where every intervention fires) with the catalog tokenizer when ``--tokenizer`` names its folder.

Random weights do not change the arithmetic of a forward pass, so speed and memory are those of the real
models; the tokens are noise.

    python benchmarks/bench_gpu.py --out bench_gpu.json --tokenizer /path/to/tokenizer-folder
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = Path(__file__).resolve().parent / "configs"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "generation_config.json")
QUESTION = "A baker makes 12 loaves a day for 7 days and sells 80 loaves. How many are left?"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def random_folder(name: str, tmp: Path, tokenizer: Path | None) -> Path:
    """Save a bf16 model of ``name``'s shape with random weights (and the tokenizer, if given) as a folder."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(CONFIGS / f"{name}.json")
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    folder = tmp / name
    model.save_pretrained(folder, safe_serialization=True)
    if tokenizer is not None:
        for f in TOKENIZER_FILES:
            if (tokenizer / f).is_file():
                shutil.copy(tokenizer / f, folder / f)
    del model
    torch.cuda.empty_cache()
    return folder


def generate_speed(model: Any, prompt: list[int], new_tokens: int, repeats: int) -> dict[str, Any]:
    ids = torch.tensor([prompt], device=next(model.parameters()).device)
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                do_sample=False, pad_token_id=0,
            )  # fmt: skip
        sync()
        times.append(time.perf_counter() - t0)
    made = out.shape[1] - ids.shape[1]
    return {"tokens": made, "tok_s": made / statistics.median(times[1:])}


def step_speed(gen: Any, prompt: list[int], n: int, steps: int, step_tokens: int, top_p: float = 1.0) -> dict[str, Any]:
    """Tokens per second of ``steps`` proposals of ``n`` rows each (the first, a warm-up, not counted)."""
    from orchestrator.steps import Sampling

    sampling = Sampling(temperature=0.7 if n > 1 else 0.0, top_p=top_p, seed=1, max_step_tokens=step_tokens)
    session = gen.start([prompt])
    gen.accept(session, 0) if gen.propose(session, n=n, sampling=sampling)[0] else None
    made, spent = 0, 0.0
    per_step = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        cands = gen.propose(session, n=n, sampling=sampling)[0]
        sync()
        dt = time.perf_counter() - t0
        if not cands:
            break
        made += sum(len(c.token_ids) for c in cands)
        spent += dt
        per_step.append(dt)
        gen.accept(session, 0)
    return {"n": n, "tokens": made, "tok_s": made / spent, "ms_per_step": 1000 * statistics.median(per_step)}


def decode_table(lm: Any, args: argparse.Namespace, prompt: list[int]) -> dict[str, Any]:
    from orchestrator.generation import StepGenerator

    gen = StepGenerator(lm.model, lm.tokenizer, boundary="none")
    rows: dict[str, Any] = {"generate_b1": generate_speed(lm.model, prompt, args.step_tokens * args.steps, 2)}
    for n in args.candidates:
        rows[f"steps_n{n}"] = step_speed(gen, prompt, n, args.steps, args.step_tokens, args.top_p)
    rows["memory_gib"] = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return rows


def escalation(lm: Any, args: argparse.Namespace, prompt: list[int]) -> dict[str, Any]:
    from benchmarks.bench_escalation import time_swaps
    from orchestrator.generation import StepGenerator
    from orchestrator.layer_choice import choose_layers
    from orchestrator.precision import LayerPrecision

    layers = choose_layers(lm.num_layers, "middle:0.25")
    sync()
    before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    t0 = time.perf_counter()
    precision = LayerPrecision(lm.model, lm.reference, layers)
    sync()
    build_s = time.perf_counter() - t0
    grown = (torch.cuda.memory_allocated() - before) if torch.cuda.is_available() else None
    swaps = time_swaps(precision, 200)
    gen = StepGenerator(lm.model, lm.tokenizer, boundary="none")
    with precision.escalated():
        escalated = step_speed(gen, prompt, 1, args.steps, args.step_tokens)
    return {
        "layers": layers,
        "extra_mib": precision.extra_bytes / 2**20,
        "gpu_memory_grown_mib": None if grown is None else grown / 2**20,
        "build_s": build_s,
        "escalate_restore_us_median": swaps["median_us"],
        "steps_n1_escalated": escalated,
    }


def orchestrated(lm: Any, max_tokens: int) -> dict[str, Any]:
    from orchestrator.api import Orchestrator
    from policies import Policy, load_policy

    data = load_policy("default").model_dump()
    data["steps"].update(max_total_tokens=max_tokens, max_step_tokens=min(max_tokens, 48))
    orch = Orchestrator(lm, policy=Policy.model_validate(data))
    orch.solve(QUESTION)  # warm-up
    sync()
    t0 = time.perf_counter()
    result = orch.solve(QUESTION)
    sync()
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "steps": len(result.steps),
        "tokens_spent": result.tokens_spent,
        "tok_s_spent": result.tokens_spent / wall,
        "interventions": result.interventions,
    }


def bench_shape(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from orchestrator.loading import load

    folder = random_folder(name, tmp, args.tokenizer)
    prompt = list(range(1000, 1000 + args.prompt_tokens))
    out: dict[str, Any] = {"model_shape": name}
    for quant in args.quants:
        torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
        lm = load(str(folder), quant=quant, device=args.device, progress=False)
        out[quant] = decode_table(lm, args, prompt)
        if quant == "bnb-nf4" or (quant == args.quants[-1] and "bnb-nf4" not in args.quants):
            out[quant]["escalation"] = escalation(lm, args, prompt)
        if args.tokenizer is not None and quant == args.solve_quant:
            out[quant]["orchestrated_solve"] = orchestrated(lm, args.solve_tokens)
        print(json.dumps({name: {quant: out[quant]}}, indent=1, default=str), flush=True)
        del lm
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"])
    ap.add_argument("--quants", nargs="+", default=["none", "bnb-nf4"])
    ap.add_argument("--candidates", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--steps", type=int, default=4, help="steps timed per row (after one warm-up step)")
    ap.add_argument("--step-tokens", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=96)
    ap.add_argument("--top-p", type=float, default=1.0, help="nucleus of the sampled candidates (policies use 0.95)")
    ap.add_argument("--tokenizer", type=Path, default=None, help="folder with the catalog tokenizer's files")
    ap.add_argument("--solve-quant", default="bnb-nf4")
    ap.add_argument("--solve-tokens", type=int, default=160)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("bench_gpu.json"))
    args = ap.parse_args()
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor(),
        "torch": torch.__version__,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "shapes": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            result["shapes"].append(bench_shape(name, args, Path(tmp)))
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
