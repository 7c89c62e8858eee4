"""Write a hand-made reasoning trace as trace.html, trace.json and trace.mmd into a folder.

    python examples/render_trace.py out/

The trace has the shape the graph produces: a question, three accepted steps, rejected drafts,
a wrong arithmetic verdict, its correction, a precision escalation and the final answer.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.trace import Trace

QUESTION = "A baker makes 4 trays of 15 muffins and sells 38. How many muffins are left?"
DRAFT = "4 trays of 15 muffins make 4 \\times 15 = 50 muffins."
STEP2 = "4 trays of 15 muffins make 4 \\times 15 = 60 muffins."


def node(id: str, kind: str, label: str, text: str = "", p: float | None = None, **data: Any) -> dict[str, Any]:
    return {"id": id, "kind": kind, "label": label, "text": text, "confidence": p, "data": data}


def edge(source: str, target: str, kind: str = "next", label: str = "") -> dict[str, Any]:
    return {"source": source, "target": target, "kind": kind, "label": label}


def example_trace() -> Trace:
    """The hand-made trace; every field the HTML page knows how to show is filled."""
    start = DRAFT.index("4 \\times")
    claim = {"text": "4 \\times 15 = 50", "stated": 50, "computed": 60, "status": "wrong",
             "span": [start, start + len("4 \\times 15 = 50")], "reason": "product is 60"}  # fmt: skip
    nodes = [
        node("q", "question", "Question", QUESTION),
        node("s1", "step", "Step 1", "The baker makes 4 trays with 15 muffins on each.", 0.95,
             index=1, origin="greedy", tokens=13, decision="accept"),
        node("c2a", "candidate", "Draft 2a", "So there are 19 muffins.", 0.38, attempt=1, rank=2,
             reason="low confidence on key tokens"),
        node("c2b", "candidate", "Draft 2b", DRAFT, 0.71, attempt=2, rank=1, reason="arithmetic checker: wrong"),
        node("v2", "verdict", "arithmetic", "", None, verifier="arithmetic", status="wrong", claims=[claim]),
        node("x2", "correction", "recomputed product", STEP2, None, before=DRAFT, after=STEP2, claims=[claim]),
        node("s2", "step", "Step 2", STEP2, 0.9, index=2, origin="correction", tokens=18, decision="corrected"),
        node("e3", "escalation", "fp16 layers", "", None, layers=[8, 9, 10, 11], mode="fp16",
             before_score=0.47, after_score=0.89),
        node("s3", "step", "Step 3", "After selling 38, 60 - 38 = 22 muffins are left.", 0.89,
             index=3, origin="escalation", tokens=16, decision="accept"),
        node("a", "answer", "Answer", "22", 0.93, answer="22", stated="22", chain_value=22,
             resolution="stated and chain agree", gold="22"),
    ]  # fmt: skip
    edges = [
        edge("q", "s1"), edge("s1", "s2"), edge("s2", "s3"), edge("s3", "a"),
        edge("c2a", "s2", "candidate", "rejected"), edge("c2b", "v2", "verdict"),
        edge("c2b", "x2", "correction", "draft"), edge("x2", "s2", "correction", "fixed"),
        edge("s2", "e3", "escalation", "p=0.47"), edge("e3", "s3", "escalation"),
    ]  # fmt: skip
    meta = {"model": "qwen2.5-0.5b-instruct", "quant": "nf4", "policy": "default", "seconds": 2.84, "tokens": 60,
            "counts": {"resamples": 1, "escalations": 1, "corrections": 1}, "trace_id": "example-0001"}  # fmt: skip
    return Trace.from_parts(QUESTION, "22", nodes, edges, meta)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("folder", type=Path, help="where trace.html, trace.json and trace.mmd go")
    args = parser.parse_args(argv)
    trace = example_trace()
    for name in ("trace.html", "trace.json", "trace.mmd"):
        print(trace.save(args.folder / name))


if __name__ == "__main__":
    main()
