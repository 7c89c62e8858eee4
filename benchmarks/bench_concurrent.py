"""What concurrent solves buy: the same questions solved one at a time and k at a time on one model.

Each level of ``--concurrency`` solves the same seeded synthetic problems under one policy with
``Orchestrator.solve_many(..., concurrency=k)``; their step proposals run as one batch. Reported per
level: wall seconds, tokens generated, tokens per second, the speed-up over k = 1, how many solves
shared a run on average, and whether every answer equals the one-at-a-time answer (it should, up to
the rounding of a different batch shape). Levels run back to back in one process, so the ratios are
side by side.

    python benchmarks/bench_concurrent.py --model smollm2-135m --n 8 --concurrency 1 4 8 --out bench_concurrent.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quant", default="sim-nf4")
    ap.add_argument("--policy", default="arithmetic")
    ap.add_argument("--n", type=int, default=8, help="synthetic problems")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("bench_concurrent.json"))
    args = ap.parse_args()

    import torch

    from orchestrator.api import Orchestrator
    from orchestrator.synthetic import generate_problems
    from policies import load_policy

    orch = Orchestrator.from_name(args.model, quant=args.quant, device=args.device)
    policy = load_policy(args.policy)
    policy = policy.model_copy(
        update={
            "steps": policy.steps.model_copy(
                update={
                    "max_total_tokens": args.max_tokens,
                    "max_step_tokens": min(policy.steps.max_step_tokens, args.max_tokens),
                }
            )
        }
    )
    questions = [p.question for p in generate_problems(args.n, seed=args.seed)]
    levels: list[dict[str, Any]] = []
    baseline: list[str] | None = None
    for k in args.concurrency:
        before = len(orch.batch_sizes)
        t0 = time.perf_counter()
        results = orch.solve_many(questions, concurrency=k, policy=policy, seed=args.seed)
        wall = time.perf_counter() - t0
        runs = orch.batch_sizes[before:]
        tokens = sum(r.tokens_spent for r in results)
        texts = [r.text for r in results]
        baseline = texts if baseline is None else baseline
        levels.append(
            {
                "concurrency": k,
                "seconds": round(wall, 2),
                "tokens": tokens,
                "tokens_per_second": round(tokens / wall, 2) if wall else None,
                "runs": len(runs),
                "solves_per_run": round(sum(s for s, _ in runs) / len(runs), 2) if runs else None,
                "same_as_first_level": sum(a == b for a, b in zip(texts, baseline, strict=True)),
                "answers": [r.answer for r in results],
            }
        )
    first = levels[0]["seconds"]
    for level in levels:
        level["speedup"] = round(first / level["seconds"], 2) if level["seconds"] else None
    report = {
        "model": args.model,
        "quant": args.quant,
        "policy": args.policy,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "levels": levels,
    }
    print(f"{args.model} {args.quant} {args.policy}, {args.n} problems, {torch.get_num_threads()} threads")
    print("k  seconds  tokens  tok/s  speed-up  solves/run  same")
    for lv in levels:
        print(
            f"{lv['concurrency']:<2} {lv['seconds']:>7} {lv['tokens']:>7} {lv['tokens_per_second']:>6} "
            f"{lv['speedup']:>8} {lv['solves_per_run']:>10} {lv['same_as_first_level']:>3}/{args.n}"
        )
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
