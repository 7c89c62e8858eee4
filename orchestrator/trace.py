"""Reasoning-trace export: one solve as a graph, written as JSON, Mermaid or one self-contained HTML page.

The graph hands over plain dicts (nodes for the question, steps, rejected candidates, verdicts,
escalations, corrections and the answer; edges for the flow). ``Trace`` validates them once and
renders them; the HTML page needs no network, and every piece of model text in it is escaped.
"""

from __future__ import annotations

import copy
import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError

FORMAT_VERSION = 1
MERMAID_LABEL_MAX = 80  # characters of node text kept in a Mermaid label
SIDE_KINDS = ("verdict", "candidate", "escalation", "correction")  # drawn inside the card of their step

# Mermaid: (open, close) of the node shape, arrow per edge kind, classDef per class.
_SHAPES = {"question": ('[/"', '"/]'), "step": ('["', '"]'), "candidate": ('("', '")'), "verdict": ('{"', '"}'),
           "escalation": ('[["', '"]]'), "correction": ('>"', '"]'), "answer": ('(["', '"])')}  # fmt: skip
_ARROWS = {"next": "-->", "candidate": "-.->", "verdict": "-.->", "escalation": "==>", "correction": "==>"}
_CLASSDEFS = {
    "question": "fill:#f1f3f5,stroke:#495057", "step": "fill:#e7f0ff,stroke:#3b6fd8",
    "candidate": "fill:#f8f9fa,stroke:#adb5bd,stroke-dasharray:4 3,color:#868e96",
    "verdict_correct": "fill:#e6f7ea,stroke:#2f9e44", "verdict_wrong": "fill:#ffe3e3,stroke:#e03131,color:#c92a2a",
    "verdict_unknown": "fill:#fff9db,stroke:#f08c00", "escalation": "fill:#f3e8ff,stroke:#7048e8",
    "correction": "fill:#fff0e0,stroke:#e8590c", "answer": "fill:#d3f9d8,stroke:#2b8a3e,stroke-width:2px",
    "other": "fill:#ffffff,stroke:#868e96",
}  # fmt: skip
_MERMAID_ESC = {'"': "#quot;", "#": "#35;", "[": "#91;", "]": "#93;", "<": "#lt;", ">": "#gt;", "|": "#124;",
                "\\": "#92;", "&": "#amp;", "`": "#96;", "{": "#123;", "}": "#125;", "(": "#40;", ")": "#41;",
                ";": "#59;", "\n": " ", "\r": " ", "\t": " "}  # fmt: skip


@dataclass
class Trace:
    """The reasoning graph of one solve; build it with ``from_parts`` or ``from_dict`` (both validate)."""

    question: str
    answer: str | None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # model, quant, policy, seconds, tokens, counts, trace_id

    @classmethod
    def from_parts(
        cls,
        question: str,
        answer: str | None,
        nodes: list[dict[str, Any]],
        edges: list[dict[str, Any]],
        meta: dict[str, Any] | None = None,
    ) -> Trace:
        """Validate and normalise the graph's dicts (defaults filled, inputs copied, not shared)."""
        if not isinstance(question, str):
            raise InputError("trace question must be a string")
        if answer is not None and not isinstance(answer, str):
            raise InputError("trace answer must be a string or None")
        if meta is not None and not isinstance(meta, dict):
            raise InputError("trace meta must be a dict")
        clean = _check_nodes(nodes)
        return cls(question, answer, clean, _check_edges(edges, {n["id"] for n in clean}), copy.deepcopy(meta or {}))

    @classmethod
    def from_dict(cls, d: Any) -> Trace:
        """Read back what ``to_dict`` wrote; anything malformed raises ``InputError``."""
        if not isinstance(d, dict):
            raise InputError(f"a trace must be a dict, not {type(d).__name__}")
        if d.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise InputError(f"unsupported trace version {d.get('version')!r} (expected {FORMAT_VERSION})")
        missing = [k for k in ("question", "nodes", "edges") if k not in d]
        if missing:
            raise InputError(f"trace dict lacks {', '.join(missing)}")
        return cls.from_parts(d["question"], d.get("answer"), d["nodes"], d["edges"], d.get("meta") or {})

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (a deep copy)."""
        return copy.deepcopy({"version": FORMAT_VERSION, "question": self.question, "answer": self.answer,
                              "nodes": self.nodes, "edges": self.edges, "meta": self.meta})  # fmt: skip

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)

    def to_mermaid(self) -> str:
        """A ``flowchart TD``: one shape and class per node kind, confidence as ``p=0.83``."""
        ids = _mermaid_ids(n["id"] for n in self.nodes)
        lines = ["flowchart TD"]
        classes: dict[str, list[str]] = {}
        for n in self.nodes:
            kind = n["kind"]
            head = n["label"] or kind
            if kind == "verdict" and n["data"].get("status"):
                head += f": {n['data']['status']}"
            if n["confidence"] is not None:
                head += f" p={n['confidence']:.2f}"
            body = _truncate(n["text"] or "", MERMAID_LABEL_MAX)
            label = _mermaid_escape(_truncate(head, MERMAID_LABEL_MAX))
            if body:
                label += "<br/>" + _mermaid_escape(body)
            left, right = _SHAPES.get(kind, ('["', '"]'))
            lines.append(f"    {ids[n['id']]}{left}{label}{right}")
            classes.setdefault(_mermaid_class(n), []).append(ids[n["id"]])
        for e in self.edges:
            arrow = _ARROWS.get(e["kind"], "-->")
            text = _mermaid_escape(_truncate(e["label"], 40))
            lines.append(f"    {ids[e['source']]} {arrow}{f'|{text}|' if text else ''} {ids[e['target']]}")
        lines += [f"    classDef {name} {style}" for name, style in _CLASSDEFS.items()]
        lines += [f"    class {','.join(members)} {name}" for name, members in classes.items()]
        return "\n".join(lines) + "\n"

    def to_html(self, title: str | None = None) -> str:
        """One page, no network: inline CSS and JS, the trace JSON embedded as ``#trace-data``."""
        return _render_html(self, title or "Reasoning trace")

    def save(self, path: str | Path) -> Path:
        """Write by suffix: ``.json``, ``.mmd``/``.mermaid`` or ``.html``/``.htm``."""
        path = Path(path)
        writers = {".json": self.to_json, ".mmd": self.to_mermaid, ".mermaid": self.to_mermaid,
                   ".html": self.to_html, ".htm": self.to_html}  # fmt: skip
        writer = writers.get(path.suffix.lower())
        if writer is None:
            suffix = path.suffix or "a file without suffix"
            raise InputError(f"cannot save a trace as {suffix!r}: use one of {sorted(writers)}")
        from orchestrator.files import write_text

        return write_text(path, writer())


def _check_nodes(nodes: Any) -> list[dict[str, Any]]:
    if not isinstance(nodes, list):
        raise InputError("trace nodes must be a list")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            raise InputError(f"trace node {i} must be a dict")
        for key in ("id", "kind"):
            if not isinstance(n.get(key), str) or not n[key]:
                raise InputError(f"trace node {i}: {key!r} must be a non-empty string")
        if n["id"] in seen:
            raise InputError(f"trace node {i}: duplicate id {n['id']!r}")
        seen.add(n["id"])
        for key in ("label", "text"):
            if n.get(key) is not None and not isinstance(n[key], str):
                raise InputError(f"trace node {n['id']!r}: {key!r} must be a string")
        conf = n.get("confidence")
        if conf is not None and (isinstance(conf, bool) or not isinstance(conf, (int, float))):
            raise InputError(f"trace node {n['id']!r}: confidence must be a number or None")
        if n.get("data") is not None and not isinstance(n["data"], dict):
            raise InputError(f"trace node {n['id']!r}: data must be a dict")
        conf = float(conf) if conf is not None and math.isfinite(conf) else None
        out.append({**copy.deepcopy(n), "label": n.get("label") or "", "text": n.get("text") or "",
                    "confidence": conf, "data": copy.deepcopy(n.get("data") or {})})  # fmt: skip
    return out


def _check_edges(edges: Any, ids: set[str]) -> list[dict[str, Any]]:
    if not isinstance(edges, list):
        raise InputError("trace edges must be a list")
    out: list[dict[str, Any]] = []
    for i, e in enumerate(edges):
        if not isinstance(e, dict):
            raise InputError(f"trace edge {i} must be a dict")
        for key in ("source", "target"):
            if e.get(key) not in ids:
                raise InputError(f"trace edge {i}: {key} {e.get(key)!r} is not a node id")
        for key in ("kind", "label"):
            if e.get(key) is not None and not isinstance(e[key], str):
                raise InputError(f"trace edge {i}: {key!r} must be a string")
        out.append({**copy.deepcopy(e), "kind": e.get("kind") or "next", "label": e.get("label") or ""})
    return out


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _mermaid_escape(text: str) -> str:
    return "".join(_MERMAID_ESC.get(ch, ch) for ch in text)


def _mermaid_ids(raw_ids: Any) -> dict[str, str]:
    """Safe, unique Mermaid ids (``n_`` prefix keeps clear of keywords such as ``end``)."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for raw in raw_ids:
        base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", raw)
        safe, k = base, 2
        while safe in used:
            safe, k = f"{base}_{k}", k + 1
        used.add(safe)
        out[raw] = safe
    return out


def mermaid_id(node_id: str) -> str:
    """The Mermaid id of a node (when no other id sanitises to the same one)."""
    return _mermaid_ids([node_id])[node_id]


def _mermaid_class(node: dict[str, Any]) -> str:
    if node["kind"] == "verdict":
        status = node["data"].get("status")
        return f"verdict_{status}" if status in ("correct", "wrong") else "verdict_unknown"
    return node["kind"] if node["kind"] in _CLASSDEFS else "other"


# ---------------------------------------------------------------------------------------------- HTML

CSS = """
*{box-sizing:border-box}body{margin:0;background:#f4f6fa;color:#1f2430;font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,Helvetica,Arial,sans-serif}main{max-width:880px;margin:0 auto;padding:24px 20px 48px}
header{background:#1f2a44;color:#fff;padding:20px 24px;border-radius:12px;margin-bottom:20px}
header h1{margin:0 0 10px;font-size:20px}.meta{display:flex;flex-wrap:wrap;gap:6px}
.meta span{background:rgba(255,255,255,.12);border-radius:6px;padding:2px 8px;font-size:12.5px}
.meta b{font-weight:600;color:#a5c0ff;margin-right:4px}.tools{margin-top:10px;font-size:12px;color:#c9d3ea}
.tools button{font:inherit;background:#33415f;color:#fff;border:0;border-radius:5px;padding:3px 9px;cursor:pointer}
.box{background:#fff;border-radius:10px;padding:14px 18px;box-shadow:0 1px 3px rgba(20,30,60,.12)}
.question{border-left:5px solid #495057}.kicker{font-size:11.5px;text-transform:uppercase;letter-spacing:.08em;
color:#6b7385;font-weight:600}.chain{position:relative;margin:18px 0 18px 14px;padding-left:26px;
border-left:3px solid #c8d3ea}.card{position:relative;margin-bottom:16px}.card:before{content:"";position:absolute;
left:-35px;top:18px;width:13px;height:13px;border-radius:50%;background:#3b6fd8;border:3px solid #f4f6fa}
.card-head{display:flex;align-items:center;gap:8px;flex-wrap:wrap;margin-bottom:6px}
.num{font-weight:700;font-size:15px}.badge{font-size:11.5px;border-radius:999px;padding:1px 9px;
background:#e9ecef;color:#495057;font-weight:600}.o-greedy{background:#e7f0ff;color:#2c5bbf}
.o-resample{background:#e3fafc;color:#0b7285}.o-escalation{background:#f3e8ff;color:#6741d9}
.o-correction{background:#fff0e0;color:#d9480f}.conf{margin-left:auto;display:flex;align-items:center;gap:6px;
font:12px ui-monospace,Menlo,Consolas,monospace;color:#495057}.bar{width:110px;height:8px;background:#e9ecef;
border-radius:4px;overflow:hidden}.bar i{display:block;height:100%}.hi{background:#2f9e44}.mid{background:#f59f00}
.lo{background:#e03131}.text{white-space:pre-wrap;word-wrap:break-word}mark{border-radius:3px;padding:0 2px}
mark.st-wrong{background:#ffc9c9;color:#a61e1e;text-decoration:underline wavy #e03131}
mark.st-correct{background:#d3f9d8}mark.st-unknown,mark.st-other{background:#fff3bf}
.chips{margin-top:8px;display:flex;gap:6px;flex-wrap:wrap}.chip{font-size:12px;border-radius:6px;padding:2px 8px;
border:1px solid}.chip.st-correct{color:#2b8a3e;border-color:#8ce99a;background:#ebfbee}
.chip.st-wrong{color:#c92a2a;border-color:#ffa8a8;background:#fff5f5}.chip.st-unknown,.chip.st-other{color:#a35f00;
border-color:#ffe066;background:#fff9db}ul.claims{margin:6px 0 0;padding-left:20px;font-size:13px;color:#495057}
.side{margin-top:10px;border-radius:8px;padding:8px 12px;font-size:13.5px}.esc{background:#f8f0ff;
border-left:4px solid #7048e8}.cor{background:#fff4e6;border-left:4px solid #e8590c}.gen{background:#f1f3f5;
border-left:4px solid #868e96}.ba{display:grid;grid-template-columns:1fr auto 1fr;gap:8px;align-items:start;
margin-top:4px}.ba .arrow{color:#868e96;font-weight:700}.ba div{background:#fff;border-radius:6px;padding:4px 8px}
details{margin-top:10px;font-size:13.5px}summary{cursor:pointer;color:#6b7385}.cand{margin:6px 0 0 14px;
padding:6px 10px;background:#f8f9fa;border:1px dashed #ced4da;border-radius:6px;color:#6b7385}
.answer{border-left:5px solid #2b8a3e;background:#ebfbee}.answer .big{font-size:24px;font-weight:700;color:#2b8a3e}
.cand .conf{display:inline-flex;margin-left:6px}
.answer .rows{display:flex;flex-wrap:wrap;gap:4px 18px;margin-top:4px;font-size:13.5px;color:#495057}
.answer .ok{color:#2b8a3e}.answer .bad{color:#c92a2a}footer{margin-top:18px;color:#868e96;font-size:12px}
"""

JS = """(function(){var d=JSON.parse(document.getElementById('trace-data').textContent);
var s=document.getElementById('js-summary');s.textContent=d.nodes.length+' nodes, '+d.edges.length+' edges';
s.setAttribute('data-js','ok');function all(o){document.querySelectorAll('details').forEach(function(x){x.open=o})}
document.getElementById('expand').onclick=function(){all(true)};
document.getElementById('collapse').onclick=function(){all(false)};})();"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cls(value: Any, allowed: tuple[str, ...], fallback: str) -> str:
    return str(value) if value in allowed else fallback


def _conf(p: float | None) -> str:
    if p is None:
        return '<span class="conf">p=–</span>'
    level = "hi" if p >= 0.8 else "mid" if p >= 0.5 else "lo"
    width = max(0.0, min(1.0, p)) * 100
    bar = f'<span class="bar"><i class="{level}" style="width:{width:.0f}%"></i></span>'
    return f'<span class="conf">{bar}p={p:.2f}</span>'


def _highlight(text: str, claims: list[Any]) -> str:
    """Escape ``text`` piece by piece, wrapping each claim's span in ``<mark>`` (span checked, else searched)."""
    spans: list[tuple[int, int, dict[str, Any]]] = []
    for c in claims:
        if not isinstance(c, dict):
            continue
        span, want = c.get("span"), c.get("text")
        s, e = span if isinstance(span, (list, tuple)) and len(span) == 2 else (None, None)
        if isinstance(s, int) and isinstance(e, int) and 0 <= s < e <= len(text) and (not want or text[s:e] == want):
            spans.append((s, e, c))
        elif isinstance(want, str) and want and want in text:
            start = text.index(want)
            spans.append((start, start + len(want), c))
    out, pos = [], 0
    for start, end, c in sorted(spans, key=lambda s: s[0]):
        if start < pos:
            continue  # overlapping claims: keep the first
        status = _cls(c.get("status"), ("correct", "wrong", "unknown"), "other")
        tip = f"{status}: stated {c.get('stated')}, computed {c.get('computed')}" + (
            f" ({c['reason']})" if c.get("reason") else ""
        )
        out += [_e(text[pos:start]), f'<mark class="st-{status}" title="{_e(tip)}">', _e(text[start:end]), "</mark>"]
        pos = end
    return "".join([*out, _e(text[pos:])])


def _claims_list(claims: list[Any]) -> str:
    items = [
        f"<li>{_e(c.get('text', ''))} — stated {_e(c.get('stated'))}, computed {_e(c.get('computed'))}"
        + (f": {_e(c['reason'])}" if c.get("reason") else "") + "</li>"
        for c in claims if isinstance(c, dict)
    ]  # fmt: skip
    return f'<ul class="claims">{"".join(items)}</ul>' if items else ""


def _side(node: dict[str, Any], claims: list[Any]) -> str:
    d, kind = node["data"], node["kind"]
    if kind == "escalation":
        layers = d.get("layers")
        layers = ", ".join(map(str, layers)) if isinstance(layers, list) else layers
        return (f'<div class="side esc"><b>Escalation</b> {_e(node["label"])} — layers {_e(layers)} '
                f'({_e(d.get("mode", "?"))}): score {_e(d.get("before_score"))} → {_e(d.get("after_score"))}'
                f'{"<div>" + _e(node["text"]) + "</div>" if node["text"] else ""}</div>')  # fmt: skip
    if kind == "correction":
        before, after = str(d.get("before", "")), str(d.get("after", node["text"]))
        claims = d.get("claims") if isinstance(d.get("claims"), list) else claims
        return (f'<div class="side cor"><b>Correction</b> {_e(node["label"])}<div class="ba">'
                f'<div class="text">{_highlight(before, claims)}</div><span class="arrow">→</span>'
                f'<div class="text">{_e(after)}</div></div></div>')  # fmt: skip
    data = ", ".join(f"{_e(k)}={_e(v)}" for k, v in d.items())
    return (
        f'<div class="side gen"><b>{_e(kind)}</b> {_e(node["label"])} {_conf(node["confidence"])}'
        f'<div class="text">{_e(node["text"])}</div><small>{data}</small></div>'
    )


def _card(num: Any, step: dict[str, Any], side: list[dict[str, Any]], on_draft: set[str]) -> str:
    d = step["data"]
    verdicts = [n for n in side if n["kind"] == "verdict"]
    claims = [c for v in verdicts for c in (v["data"].get("claims") or [])]
    origin = str(d.get("origin", "greedy"))
    badges = f'<span class="badge o-{_e(re.sub(r"[^a-z]", "", origin))}">{_e(origin)}</span>'
    for key in ("decision", "tokens"):
        if d.get(key) is not None:
            badges += f' <span class="badge">{_e(d[key])}{" tokens" if key == "tokens" else ""}</span>'
    chips = "".join(
        f'<span class="chip st-{_cls(v["data"].get("status"), ("correct", "wrong", "unknown"), "other")}">'
        f'{_e(v["data"].get("verifier") or v["label"] or "verifier")}{" on draft" * (v["id"] in on_draft)}: '
        f'{_e(v["data"].get("status", "?"))}</span>'
        for v in verdicts)  # fmt: skip
    rejected = [n for n in side if n["kind"] == "candidate"]
    cands = "".join(
        f'<div class="cand"><div class="text">{_e(c["text"])}</div><small>attempt {_e(c["data"].get("attempt", "?"))},'
        f' rank {_e(c["data"].get("rank", "?"))} {_conf(c["confidence"])} {_e(c["data"].get("reason", ""))}</small>'
        "</div>" for c in rejected)  # fmt: skip
    parts = [
        f'<section class="card box step" id="step-{_e(num)}"><div class="card-head">',
        f'<span class="num">Step {_e(num)}</span>{badges}{_conf(step["confidence"])}</div>',
        f'<div class="text">{_highlight(step["text"], claims)}</div>',
        f'<div class="chips">{chips}</div>' if chips else "",
        _claims_list(claims),
        *(_side(n, claims) for n in side if n["kind"] not in ("verdict", "candidate")),
        f"<details><summary>{len(rejected)} rejected candidate{'s' * (len(rejected) != 1)}</summary>{cands}</details>"
        if rejected else "",
        "</section>",
    ]  # fmt: skip
    return "".join(parts)


Nodes = list[dict[str, Any]]


def _attach(trace: Trace, steps: Nodes) -> tuple[dict[str, Nodes], Nodes, set[str]]:
    """Map each side node (verdict, candidate, ...) to its step, following edges transitively.

    Also returns the nodes tied to no step, and the ids reached through another side node (a verdict
    on a rejected draft, say).
    """
    owner = {s["id"]: s["id"] for s in steps}
    indirect: set[str] = set()
    skip = {n["id"] for n in trace.nodes if n["kind"] in ("question", "answer")}
    changed = True
    while changed:
        changed = False
        for e in sorted(trace.edges, key=lambda e: e["target"] not in owner):  # incoming to a step first
            for a, b in ((e["source"], e["target"]), (e["target"], e["source"])):
                if a not in owner and a not in skip and b in owner:
                    owner[a], changed = owner[b], True
                    if owner[b] != b:
                        indirect.add(a)
    side: dict[str, Nodes] = {s["id"]: [] for s in steps}
    for n in trace.nodes:
        if owner.get(n["id"], n["id"]) != n["id"]:
            side[owner[n["id"]]].append(n)
    return side, [n for n in trace.nodes if n["id"] not in owner and n["id"] not in skip], indirect


def _answer_box(trace: Trace) -> str:
    node = next((n for n in trace.nodes if n["kind"] == "answer"), None)
    d: dict[str, Any] = node["data"] if node else {}
    answer = d.get("answer", trace.answer)
    rows = "".join(f"<div><b>{_e(k)}</b>: {_e(d[k])}</div>" for k in ("stated", "chain_value", "resolution", "gold")
                   if d.get(k) is not None)  # fmt: skip
    verdict = ""
    if d.get("gold") is not None and answer is not None:
        ok = str(d["gold"]).strip() == str(answer).strip()
        verdict = f' <span class="{"ok" if ok else "bad"}">{"✓ matches gold" if ok else "✗ differs from gold"}</span>'
    conf = _conf(node["confidence"]) if node else ""
    return (f'<section class="box answer"><div class="kicker">Final answer</div><div class="big">'
            f'{_e(answer if answer is not None else "no answer")}{verdict}</div>'
            f'<div class="rows">{rows}{conf}</div></section>')  # fmt: skip


def _meta_spans(meta: dict[str, Any]) -> str:
    flat: list[tuple[str, Any]] = []
    for k, v in meta.items():
        flat += [(f"{k}.{k2}", v2) for k2, v2 in v.items()] if isinstance(v, dict) else [(k, v)]
    return "".join(f"<span><b>{_e(k)}</b>{_e(f'{v:.2f}' if isinstance(v, float) else v)}</span>" for k, v in flat)


def _render_html(trace: Trace, title: str) -> str:
    def key(pair: tuple[int, dict[str, Any]]) -> tuple[float, int]:
        index = pair[1]["data"].get("index")
        return (float(index) if isinstance(index, (int, float)) else math.inf, pair[0])

    steps = [n for _, n in sorted(enumerate(n for n in trace.nodes if n["kind"] == "step"), key=key)]
    side, loose, indirect = _attach(trace, steps)
    cards = "".join(_card(s["data"].get("index", i + 1), s, side[s["id"]], indirect) for i, s in enumerate(steps))
    extra = "".join(_side(n, []) for n in loose)
    extra = f'<div class="box"><div class="kicker">Other nodes</div>{extra}</div>' if extra else ""
    data = json.dumps(trace.to_dict(), ensure_ascii=False, default=str).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head><body><main>
<header><h1>{_e(title)}</h1><div class="meta">{_meta_spans(trace.meta)}</div><div class="tools">
<button id="expand" type="button">expand all</button> <button id="collapse" type="button">collapse all</button>
<span id="js-summary"></span></div></header>
<section class="box question"><div class="kicker">Question</div><div class="text">{_e(trace.question)}</div></section>
<div class="chain">{cards}</div>{extra}
{_answer_box(trace)}
<footer>{len(steps)} steps · {len(trace.nodes)} nodes · {len(trace.edges)} edges · quantized-slm trace</footer></main>
<script type="application/json" id="trace-data">{data}</script>
<script>{JS}</script></body></html>
"""
