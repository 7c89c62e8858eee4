"""Cost of step-wise generation against one HF ``generate`` call, and batch throughput.

Measures, side by side in one run (machines here are noisy, so ratios are what count):
- 10 steps generated step by step (cache kept) vs one ``generate`` call for exactly the same tokens;
- plain step-wise generation of 8 questions as one batch vs one at a time (tokens per second), and
  the lockstep batch with rows that ended their step parked (the default) vs fed padding to the end;
- with ``--rows``, the model's own decode step at several batch sizes: the ceiling batching can reach on
  this machine, which sets how many rows plain runs batch and how many solves run at once.

    python benchmarks/bench_generation.py --model smollm2-135m --out bench_generation.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "A cafe has 9 indoor tables and 11 outdoor tables. Each indoor table has 10 chairs, and each outdoor table "
    "has 3 chairs. How many chairs are there in all?",
    "Tom has 3 bags with 4 apples in each. He eats 2 apples. How many apples are left?",
    "A train travels 60 miles per hour for 3 hours. How far does it travel?",
    "Sara bought 5 notebooks at $2 each and a pen for $3. How much did she spend?",
    "There are 24 students in a class. A third of them are boys. How many girls are there?",
    "A baker makes 12 loaves a day for 7 days and sells 80 loaves. How many are left?",
]


def stepwise_vs_generate(lm: Any, steps: int, repeats: int) -> dict[str, Any]:
    from orchestrator.generation import StepGenerator
    from orchestrator.prompting import build_prompt
    from orchestrator.steps import Sampling

    gen = StepGenerator(lm.model, lm.tokenizer, boundary="newline")
    prompt = build_prompt(lm.tokenizer, QUESTIONS[0])
    step_times, gen_times, n_tokens = [], [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        session = gen.start(prompt)
        for _ in range(steps):
            cand = gen.propose(session, sampling=Sampling(max_step_tokens=64))[0]
            if not cand:
                break
            gen.accept(session, 0)
        step_times.append(time.perf_counter() - t0)
        produced = session.token_ids()[len(prompt) :]
        n_tokens = len(produced)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = lm.model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                max_new_tokens=n_tokens,
                min_new_tokens=n_tokens,
                do_sample=False,
                pad_token_id=lm.tokenizer.pad_token_id or 0,
            )
        gen_times.append(time.perf_counter() - t0)
        same = out[0, len(prompt) :].tolist() == produced
    ratio = statistics.median(step_times) / statistics.median(gen_times)
    return {
        "steps": steps,
        "tokens": n_tokens,
        "stepwise_s": step_times,
        "generate_s": gen_times,
        "ratio_median": ratio,
        "same_tokens": same,
        "goal": "ratio <= 1.10",
    }


def batch_throughput(lm: Any, batch: int, max_tokens: int) -> dict[str, Any]:
    from orchestrator.generation import StepGenerator
    from orchestrator.plain import generate_plain
    from orchestrator.prompting import build_prompt

    gen = StepGenerator(lm.model, lm.tokenizer)
    prompts = [build_prompt(lm.tokenizer, q) for q in QUESTIONS[:batch]]
    t0 = time.perf_counter()
    together = generate_plain(gen, prompts, max_steps=100, max_tokens=max_tokens, lockstep=False)
    t_batch = time.perf_counter() - t0
    t0 = time.perf_counter()
    lock = generate_plain(gen, prompts, max_steps=100, max_tokens=max_tokens)
    t_lock = time.perf_counter() - t0
    gen.park_ended_rows = False  # the same lockstep run with ended rows fed padding to the end
    t0 = time.perf_counter()
    unparked = generate_plain(gen, prompts, max_steps=100, max_tokens=max_tokens)
    t_unparked = time.perf_counter() - t0
    gen.park_ended_rows = True
    tok_batch = sum(r.tokens for r in together)
    t0 = time.perf_counter()
    alone = [generate_plain(gen, [p], max_steps=100, max_tokens=max_tokens)[0] for p in prompts]
    t_alone = time.perf_counter() - t0
    tok_alone = sum(r.tokens for r in alone)
    agree = sum(a.text == b.text for a, b in zip(alone, together, strict=True))
    return {
        "batch": batch,
        "batch_tok_s": tok_batch / t_batch,
        "batch_lockstep_tok_s": sum(r.tokens for r in lock) / t_lock,
        "batch_lockstep_unparked_tok_s": sum(r.tokens for r in unparked) / t_unparked,
        "parking_speedup": t_unparked / t_lock,
        "parking_same_text": sum(a.text == b.text for a, b in zip(lock, unparked, strict=True)),
        "one_at_a_time_tok_s": tok_alone / t_alone,
        "speedup": (tok_batch / t_batch) / (tok_alone / t_alone),
        "tokens_batch": tok_batch,
        "tokens_alone": tok_alone,
        "same_text_questions": agree,
    }


def decode_by_rows(lm: Any, sizes: list[int], rounds: int = 2, steps: int = 5) -> list[dict[str, Any]]:
    """Median seconds of one decode step (one new token on every row, a 16-token cache) per batch size;
    the sizes alternate order each round so that a drift in the machine's load does not favour one."""
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for k in range(rounds):
        for n in sizes if k % 2 == 0 else sizes[::-1]:
            ids = torch.randint(100, 1000, (n, 16))
            with torch.no_grad():
                cache = lm.model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values
                mask = torch.ones(n, 16, dtype=torch.long)
                for i in range(steps):
                    mask = torch.cat([mask, torch.ones(n, 1, dtype=torch.long)], dim=1)
                    t0 = time.perf_counter()
                    lm.model(
                        input_ids=ids[:, :1],
                        attention_mask=mask,
                        position_ids=torch.full((n, 1), 16 + i),
                        past_key_values=cache,
                        use_cache=True,
                    )
                    times[n].append(time.perf_counter() - t0)
    out = []
    for n in sizes:
        step = statistics.median(times[n])
        out.append({"rows": n, "step_ms": round(step * 1000, 1), "tok_s": round(n / step, 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--quant", default="none")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--skip-stepwise", action="store_true", help="only the batch measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--rows", default="", help="decode step by batch size only, e.g. 8,16,32,64")
    ap.add_argument("--out", type=Path, default=Path("bench_generation.json"))
    args = ap.parse_args()

    from orchestrator.loading import load

    lm = load(args.model, quant=args.quant, device="cpu")
    result: dict[str, Any] = {"model": args.model, "quant": args.quant, "threads": torch.get_num_threads()}
    if args.rows:  # that measurement alone
        result["decode_by_rows"] = decode_by_rows(lm, [int(n) for n in args.rows.split(",")])
    elif not args.skip_stepwise:
        result["stepwise_vs_generate"] = stepwise_vs_generate(lm, args.steps, args.repeats)
    print(json.dumps(result, indent=2), flush=True)
    args.out.write_text(json.dumps(result, indent=2))
    if args.batch > 1 and not args.rows:
        result["batch_vs_single"] = batch_throughput(lm, args.batch, args.max_tokens)
        print(json.dumps(result["batch_vs_single"], indent=2), flush=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
