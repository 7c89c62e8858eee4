"""What orchestration costs: plain step generation vs the graph with nothing on vs the graph with interventions.

For each problem of a seeded synthetic arithmetic suite, side by side on one loaded model:
- ``plain``: the step generator alone (``generate_plain``), greedy;
- ``graph-off``: the full LangGraph solve with the ``plain`` policy (every intervention disabled);
  the goal is ``graph-off`` / ``plain`` <= 1.10 for the same tokens;
- ``graph-on``: the solve with a real policy (default ``arithmetic``): time, tokens generated,
  accuracy, and how often each intervention fired.

    python benchmarks/bench_orchestrator.py --model smollm2-135m --n 6 --out bench_orchestrator.json
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
    ap.add_argument("--n", type=int, default=6, help="synthetic problems")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("bench_orchestrator.json"))
    args = ap.parse_args()

    from orchestrator.api import Orchestrator
    from orchestrator.plain import generate_plain
    from orchestrator.synthetic import generate_problems
    from policies import Policy, load_policy
    from verifiers import answers_match, extract_answer

    orch = Orchestrator.from_name(args.model, quant=args.quant, device="cpu")
    off = Policy.plain()
    off = off.model_copy(update={"steps": off.steps.model_copy(update={"max_total_tokens": args.max_tokens})})
    on = load_policy(args.policy)
    on = on.model_copy(update={"steps": on.steps.model_copy(update={"max_total_tokens": args.max_tokens})})
    problems = generate_problems(args.n, seed=args.seed)
    rows: list[dict[str, Any]] = []
    for p in problems:
        from orchestrator.api import _prompt_ids

        gen = orch.generator(off)
        prompt = _prompt_ids(orch.loaded.tokenizer, off, p.question)
        t0 = time.perf_counter()
        plain = generate_plain(gen, [prompt], max_steps=off.steps.max_steps, max_tokens=args.max_tokens)[0]
        t_plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph_off = orch.solve(p.question, policy=off)
        t_off = time.perf_counter() - t0
        t0 = time.perf_counter()
        graph_on = orch.solve(p.question, policy=on)
        t_on = time.perf_counter() - t0
        row: dict[str, Any] = {
            "id": p.id,
            "tier": p.tier,
            "gold": p.answer,
            "plain": {"s": t_plain, "tokens": plain.tokens, "answer": extract_answer(plain.text)},
            "graph_off": {"s": t_off, "tokens": graph_off.tokens, "answer": graph_off.answer,
                          "same_text_as_plain": graph_off.text == plain.text},
            "graph_on": {"s": t_on, "tokens": graph_on.tokens, "tokens_spent": graph_on.tokens_spent,
                         "answer": graph_on.answer, "interventions": graph_on.interventions},
        }  # fmt: skip
        for key in ("plain", "graph_off", "graph_on"):
            ans = row[key]["answer"]
            row[key]["correct"] = ans is not None and answers_match(ans, p.answer)
        rows.append(row)
        print(json.dumps(row), flush=True)
    tot = {k: sum(r[k]["s"] for r in rows) for k in ("plain", "graph_off", "graph_on")}
    fired: dict[str, int] = {}
    for r in rows:
        for k, v in r["graph_on"]["interventions"].items():
            fired[k] = fired.get(k, 0) + v
    summary = {
        "model": args.model,
        "quant": args.quant,
        "policy": args.policy,
        "n": len(rows),
        "graph_off_over_plain": tot["graph_off"] / tot["plain"],
        "graph_on_over_plain": tot["graph_on"] / tot["plain"],
        "same_text_graph_off_vs_plain": sum(r["graph_off"]["same_text_as_plain"] for r in rows),
        "tokens": {k: sum(r[k]["tokens"] for r in rows) for k in ("plain", "graph_off", "graph_on")},
        "tokens_spent_graph_on": sum(r["graph_on"]["tokens_spent"] for r in rows),
        "correct": {k: sum(r[k]["correct"] for r in rows) for k in ("plain", "graph_off", "graph_on")},
        "interventions_fired": fired,
        "problems_with_intervention": sum(bool(r["graph_on"]["interventions"]) for r in rows),
        "seconds": tot,
        "goal": "graph_off_over_plain <= 1.10",
        "rows": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))
    args.out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
