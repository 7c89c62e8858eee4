"""What the graph itself costs per step, with a step stream that costs nothing.

Model time dominates a real solve, and on a shared 2-core machine its noise swamps a few
milliseconds. This drives the real graph (LangGraph nodes, confidence scoring, verifiers,
trace records) with a scripted zero-cost stream, so the orchestration overhead per step is
measured on its own; compare it with the seconds a real step takes.

    python benchmarks/bench_graph_overhead.py --steps 20 --repeats 5 --out bench_graph_overhead.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the scripted stream lives with the tests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench_graph_overhead.json"))
    args = ap.parse_args()

    import structlog

    from orchestrator.api import run_solve
    from policies import Policy, load_policy
    from tests.fakes import Draft, ScriptedStream

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    line = Draft("Each bag has 4 apples, so 3 x 4 = 12 apples in all, and 12 - 2 = 10 are left.\n")
    last = Draft("The answer is \\boxed{10}.", finished=True)
    script = [[line]] * (args.steps - 1) + [[last]]
    result: dict[str, object] = {"steps": args.steps}
    for name, policy in (("plain", Policy.plain()), ("arithmetic", load_policy("arithmetic"))):
        policy = policy.model_copy(update={"steps": policy.steps.model_copy(update={"max_steps": args.steps})})
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_solve("q", [1], ScriptedStream(script), policy)
            times.append(time.perf_counter() - t0)
        per_step_ms = 1000 * statistics.median(times) / args.steps
        result[f"{name}_ms_per_step"] = per_step_ms
        print(f"{name}: {per_step_ms:.2f} ms per step (median of {args.repeats} solves of {args.steps} steps)")
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
