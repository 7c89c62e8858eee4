"""A quantized model slips in its arithmetic; the orchestrated solve catches the slip and corrects it.

Runs the same question twice on the same loaded model: once with the ``plain`` policy (no
monitors, no verifiers) and once with the ``arithmetic`` policy (every claim checked, wrong
results corrected in place, the chain continues from the corrected text). Writes the
orchestrated solve's reasoning graph as an HTML page.

    python examples/correct_a_slip.py                      # qwen2.5-coder-0.5b, 3-bit weights
    python examples/correct_a_slip.py --model qwen2.5-coder-1.5b --quant sim-nf4 --question "..."
"""

from __future__ import annotations

import argparse
from pathlib import Path

import structlog

from orchestrator import Orchestrator

QUESTION = (
    "Terese thinks that running various distances throughout the week can make one healthy.  On Monday, she runs "
    "4.2 miles;  Tuesday, 3.8 miles; Wednesday, 3.6 miles; and on Thursday, 4.4 miles.  Determine the average "
    "distance Terese runs on each of the days she runs."
)


def show(title: str, result) -> None:  # type: ignore[no-untyped-def]
    print(f"\n=== {title}: answer {result.answer}  ({result.tokens} tokens, {result.seconds:.0f} s)")
    for step in result.steps:
        text = step["text"].strip()
        if not text:
            continue
        marks = ",".join(v["status"] for v in step["verdicts"] if v["status"] != "unknown")
        print(f"  [{step['index'] + 1:>2}] {text}" + (f"   <{marks}>" if marks else ""))
        if step.get("corrected_from"):
            print(f"       (model wrote: {step['corrected_from'].strip()})")
    print(f"  interventions: {result.interventions or 'none'}; final: {result.final}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--quant", default="rtn-int3")
    ap.add_argument("--question", default=QUESTION)
    ap.add_argument("--trace", type=Path, default=Path("correct_a_slip.html"))
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up

    orch = Orchestrator.from_name(args.model, quant=args.quant, device="cpu")
    plain = orch.solve(args.question, policy="plain")
    show(f"{args.model} {args.quant}, plain", plain)
    checked = orch.solve(args.question, policy="arithmetic")
    show(f"{args.model} {args.quant}, orchestrated (arithmetic policy)", checked)
    print(f"\nreasoning graph: {checked.trace.save(args.trace)}")


if __name__ == "__main__":
    main()
