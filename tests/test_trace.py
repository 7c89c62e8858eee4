"""Trace export: JSON round trip, Mermaid, self-contained escaped HTML, save by suffix, and a real Chromium render."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError
from orchestrator.trace import Trace, mermaid_id
from tests.browser import chromium_binary, distinct_colors, dump_dom, screenshot

XSS = "<script>alert(1)</script>"
QUESTION = 'Tom buys 3 boxes of 12 "red" pencils [sale] and gives away 5. How many are left?'
WRONG_DRAFT = "3 boxes of 12 pencils make 3 \\times 12 = 38 pencils."
STEP1 = "Tom buys 3 boxes with 12 pencils each."
STEP2 = "3 boxes of 12 pencils make 3 \\times 12 = 36 pencils."
STEP3 = f"He gives away 5, so 36 - 5 = 31 pencils remain. {XSS}"
CLAIM = {"text": "3 \\times 12 = 38", "stated": 38, "computed": 36, "status": "wrong",
         "span": [WRONG_DRAFT.index("3 \\times"), WRONG_DRAFT.index(" pencils.")], "reason": "product"}  # fmt: skip
STEP2_CLAIM = {**CLAIM, "text": "3 \\times 12 = 36", "stated": 36, "status": "correct", "reason": "",
               "span": [STEP2.index("3 \\times"), STEP2.index(" pencils.")]}  # fmt: skip


def node(id: str, kind: str, label: str, text: str = "", p: float | None = None, **data: Any) -> dict[str, Any]:
    return {"id": id, "kind": kind, "label": label, "text": text, "confidence": p, "data": data}


def edge(source: str, target: str, kind: str = "next", label: str = "") -> dict[str, Any]:
    return {"source": source, "target": target, "kind": kind, "label": label}


def example_trace() -> Trace:
    nodes = [
        node("q", "question", "Question", QUESTION),
        node("s1", "step", "Step 1", STEP1, 0.93, index=1, origin="greedy", tokens=11, decision="accept"),
        node("c2a", "candidate", "Draft 2a", "So the answer is 36.", 0.41, attempt=1, rank=2, reason="low confidence"),
        node("c2b", "candidate", "Draft 2b", WRONG_DRAFT, 0.62, attempt=2, rank=1, reason="arithmetic wrong"),
        node("v2", "verdict", "arithmetic", "", None, verifier="arithmetic", status="wrong", claims=[CLAIM]),
        node("x2", "correction", "fix product", STEP2, None, before=WRONG_DRAFT, after=STEP2, claims=[CLAIM]),
        node("s2", "step", "Step 2", STEP2, 0.88, index=2, origin="correction", tokens=17, decision="corrected"),
        node("v2ok", "verdict", "arithmetic", "", None, verifier="arithmetic", status="correct", claims=[STEP2_CLAIM]),
        node("e3", "escalation", "fp16 layers", "re-ran with layers 10-13 in fp16", None, layers=[10, 11, 12, 13],
             mode="fp16", before_score=0.44, after_score=0.86),
        node("s3", "step", "Step 3", STEP3, 0.86, index=3, origin="escalation", tokens=19, decision="accept"),
        node("odd", "lookahead", "a kind nobody knows", "future node kind", 0.5, depth=2),
        node("a", "answer", "Answer", "31", 0.9, answer="31", stated="31", chain_value=31, resolution="agree",
             gold="31"),
    ]  # fmt: skip
    edges = [
        edge("q", "s1"), edge("s1", "s2"), edge("s2", "s3"), edge("s3", "a"),
        edge("c2a", "s2", "candidate", "rejected"), edge("c2b", "v2", "verdict", "checked"),
        edge("c2b", "x2", "correction", "draft"), edge("x2", "s2", "correction", "fixed"),
        edge("s2", "v2ok", "verdict"), edge("s2", "e3", "escalation", "p<0.5"), edge("e3", "s3", "escalation"),
        edge("s3", "odd", "peek", "lookahead"),
    ]  # fmt: skip
    meta = {"model": "qwen2.5-0.5b", "quant": "nf4", "policy": "default", "seconds": 3.217, "tokens": 47,
            "counts": {"resamples": 1, "escalations": 1, "corrections": 1}, "trace_id": "t-0001"}  # fmt: skip
    return Trace.from_parts(QUESTION, "31", nodes, edges, meta)


@pytest.fixture
def trace() -> Trace:
    return example_trace()


def test_json_round_trip(trace: Trace) -> None:
    back = Trace.from_dict(json.loads(trace.to_json()))
    assert back == trace
    assert back.to_dict() == trace.to_dict()
    assert json.loads(trace.to_json(indent=None))["version"] == 1


def test_from_parts_fills_defaults_and_copies() -> None:
    nodes = [{"id": "q", "kind": "question"}, {"id": "s", "kind": "step", "confidence": float("nan")}]
    t = Trace.from_parts("q?", None, nodes, [{"source": "q", "target": "s"}], None)
    assert t.nodes[1] == {"id": "s", "kind": "step", "label": "", "text": "", "confidence": None, "data": {}}
    assert t.edges == [{"source": "q", "target": "s", "kind": "next", "label": ""}]
    nodes[0]["kind"] = "changed"  # the trace holds its own copy
    assert t.nodes[0]["kind"] == "question"


@pytest.mark.parametrize(
    "bad",
    [
        None,  # not a dict
        [],  # a list
        {"question": "q", "nodes": []},  # no edges
        {"question": 3, "answer": None, "nodes": [], "edges": []},  # question not a string
        {"question": "q", "answer": None, "nodes": "x", "edges": []},  # nodes not a list
        {"question": "q", "answer": None, "nodes": [{"kind": "step"}], "edges": []},  # node without id
        {"question": "q", "answer": None, "nodes": [{"id": "a", "kind": "step"}] * 2, "edges": []},  # duplicate id
        {"question": "q", "answer": None, "nodes": [{"id": "a", "kind": "step", "confidence": "hi"}], "edges": []},
        {"question": "q", "answer": None, "nodes": [{"id": "a", "kind": "step"}], "edges": [{"source": "a"}]},
        {"question": "q", "answer": None, "nodes": [], "edges": [], "version": 99},  # future format
        {"question": "q", "answer": None, "nodes": [], "edges": [], "meta": "m"},  # meta not a dict
    ],
)
def test_from_dict_rejects_garbage(bad: Any) -> None:
    with pytest.raises(InputError):
        Trace.from_dict(bad)


def test_mermaid(trace: Trace) -> None:
    text = trace.to_mermaid()
    assert text.startswith("flowchart TD\n")
    lines = text.splitlines()
    for n in trace.nodes:
        assert any(line.strip().startswith(mermaid_id(n["id"]) + n_open) for line in lines
                   for n_open in ('["', '("', '{"', '[["', '>"', '(["', '[/"')), n["id"]  # fmt: skip
    for e in trace.edges:
        pattern = rf"^\s+{mermaid_id(e['source'])} [-.=]+>(\|[^|]*\|)? {mermaid_id(e['target'])}$"
        assert any(re.match(pattern, line) for line in lines), e
    # escaping: no raw quote, bracket, backslash or angle bracket from the model text survives inside labels
    body = "\n".join(line for line in lines if line.strip().startswith("n_"))
    assert "#quot;red#quot;" in body and "#91;sale#93;" in body and "#92;times" in body
    assert "<script>" not in text and "p<0.5" not in text and "#lt;0.5" in text
    assert "p=0.93" in text
    # style per kind: the wrong verdict is red, the correction orange, the escalation purple, unknown kinds generic
    assert "class n_v2 verdict_wrong" in text and "class n_x2 correction" in text and "class n_e3 escalation" in text
    assert "class n_odd other" in text
    assert re.search(r"classDef verdict_wrong fill:#ffe3e3,stroke:#e03131", text)


def test_mermaid_ids_are_safe_and_unique() -> None:
    t = Trace.from_parts("q", None, [node("end", "step", "x"), node("a-b", "step", "y"), node("a_b", "step", "z")],
                         [edge("end", "a-b")], {})  # fmt: skip
    text = t.to_mermaid()
    assert "n_end[" in text and "n_a_b[" in text and "n_a_b_2[" in text


def test_mermaid_truncates_long_labels() -> None:
    t = Trace.from_parts("q", None, [node("s", "step", "Step", "word " * 100)], [], {})
    label_line = t.to_mermaid().splitlines()[1]
    assert "…" in label_line and len(label_line) < 200


def test_html_escapes_model_text(trace: Trace) -> None:
    page = trace.to_html(title="Trace <b>1</b>")
    assert XSS not in page and "alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>1</b>" not in page and "Trace &lt;b&gt;1&lt;/b&gt;" in page
    assert page.count("<script") == 2  # the JSON data block and the inline script, nothing else


def test_html_is_self_contained(trace: Trace) -> None:
    page = trace.to_html()
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(?!#)""", page)  # no external resource of any scheme
    assert "@import" not in page and "url(" not in page


def test_html_content(trace: Trace) -> None:
    page = trace.to_html()
    for n in trace.nodes:
        if n["kind"] == "step":
            assert f'id="step-{n["data"]["index"]}"' in page
    # the claim span is wrapped in <mark> in the correction's "before" text, pieces escaped separately
    assert '<mark class="st-wrong" title="wrong: stated 38, computed 36 (product)">3 \\times 12 = 38</mark>' in page
    assert '<mark class="st-correct"' in page  # the checked claim of step 2
    assert 'class="chip st-wrong">arithmetic on draft: wrong' in page and 'class="chip st-correct"' in page
    assert "2 rejected candidates" in page and "low confidence" in page
    assert "0.44 → 0.86" in page and "10, 11, 12, 13" in page
    assert "a kind nobody knows" in page  # unknown kinds still render
    assert "✓ matches gold" in page
    for value in ("qwen2.5-0.5b", "nf4", "3.22", "counts.escalations", "t-0001"):
        assert value in page
    embedded = re.search(r'<script type="application/json" id="trace-data">(.*?)</script>', page, re.S)
    assert embedded is not None and "</" not in embedded.group(1)
    assert Trace.from_dict(json.loads(embedded.group(1))) == trace


def test_highlight_falls_back_and_ignores_bad_spans() -> None:
    claims = [{"text": "2 + 2 = 5", "status": "wrong", "span": [100, 200]}, {"text": "x", "span": "bad"}, "junk"]
    t = Trace.from_parts("q", None, [node("s", "step", "S", "so <2 + 2 = 5>", 0.2, index=1),
                                     node("v", "verdict", "v", "", None, status="wrong", claims=claims)],
                         [edge("s", "v", "verdict")], {})  # fmt: skip
    page = t.to_html()
    assert 'so &lt;<mark class="st-wrong"' in page and ">2 + 2 = 5</mark>&gt;" in page


@pytest.mark.parametrize("suffix", [".json", ".mmd", ".mermaid", ".html"])
def test_save_by_suffix(trace: Trace, tmp_path: Path, suffix: str) -> None:
    path = trace.save(tmp_path / "out" / f"trace{suffix}")
    text = path.read_text(encoding="utf-8")
    expected = {".json": trace.to_json(), ".mmd": trace.to_mermaid(), ".mermaid": trace.to_mermaid()}
    assert text == expected.get(suffix, trace.to_html())


def test_save_rejects_unknown_suffix(trace: Trace, tmp_path: Path) -> None:
    for name in ("trace.pdf", "trace"):
        with pytest.raises(InputError):
            trace.save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.browser
def test_html_renders_in_chromium(trace: Trace, tmp_path: Path) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium not installed (CI: apt-get update && apt-get install -y chromium)")
    page = trace.save(tmp_path / "trace.html")
    dom = dump_dom(binary, page)
    for text in (STEP1, STEP2):
        assert text.replace("<", "&lt;").replace(">", "&gt;") in dom.replace("&quot;", '"')
    assert "He gives away 5, so 36 - 5 = 31 pencils remain. &lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert 'data-js="ok"' in dom and "12 nodes, 12 edges" in dom  # the inline script ran and parsed the JSON
    assert dom.count('class="card box step"') == 3
    png = screenshot(binary, page, tmp_path / "trace.png")
    assert png.stat().st_size > 10_000
    assert distinct_colors(png) > 20  # not a blank page
