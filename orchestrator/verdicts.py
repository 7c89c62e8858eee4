"""Verifier verdicts as plain data, and the choices the graph makes from them.

Verifiers return rich objects; the graph keeps JSON-ready dicts (they go through the
checkpointer and into the trace). A verifier that raises is "cannot judge", never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_RANK = {"wrong": 0, "unknown": 1, "correct": 2}


def resolve_verifiers(names: Sequence[str]) -> list[tuple[str, Callable[..., Any]]]:
    """Look up the policy's verifier names in the registry (unknown names fail here, before a solve)."""
    from verifiers import get_verifier

    return [(name, get_verifier(name)) for name in names]


def run_verifiers(
    verifiers: Sequence[tuple[str, Callable[..., Any]]],
    text: str,
    context: Mapping[str, Any],
    *,
    cut: bool = False,
) -> list[dict[str, Any]]:
    """Run each verifier on ``text``; return one JSON-ready verdict dict per verifier.

    ``cut``: generation stopped at a token limit, so the text's last word may be a number cut short
    ("= 1" of "= 150"); that word is left out of what is judged and kept as written."""
    from verifiers import run_verifier

    judged, tail = split_unfinished(text) if cut else (text, "")
    out: list[dict[str, Any]] = []
    for name, fn in verifiers:
        verdict = run_verifier(fn, judged, context)
        out.append(
            {
                "verifier": name,
                "status": verdict.status,
                "claims": [c.to_dict() for c in verdict.claims],
                "corrected_text": None if verdict.corrected_text is None else verdict.corrected_text + tail,
                "reason": verdict.reason,
            }
        )
    return out


def split_unfinished(text: str) -> tuple[str, str]:
    """``text`` without its last word when that word holds a digit and nothing ends it (no space or
    newline after it): the word the limit may have cut. Returns (the rest, that word)."""
    last = re.search(r"\S+\Z", text)
    if last is None or not any(ch.isdigit() for ch in last.group()):
        return text, ""
    return text[: last.start()], last.group()


def verdict_rank(record: Mapping[str, Any], *, repairable: bool = False) -> float:
    """2 when a verifier says correct and none wrong, 1 when nothing could be judged, 0 when one says wrong.

    With ``repairable`` (the policy corrects wrong claims in place), a wrong step that comes with
    its corrected text ranks 1.5: after the repair it is a verified step, better than one that
    says nothing checkable.
    """
    verdicts = record.get("verdicts") or []
    statuses = [v["status"] for v in verdicts]
    if "wrong" in statuses:
        fixable = all(v.get("corrected_text") for v in verdicts if v["status"] == "wrong")
        return 1.5 if repairable and fixable else _RANK["wrong"]
    if "correct" in statuses:
        return _RANK["correct"]
    return _RANK["unknown"]


def best_candidate(pool: Sequence[Mapping[str, Any]], *, repairable: bool = False) -> Mapping[str, Any]:
    """Best by verifier verdict first (correct > repairable wrong > cannot judge > wrong), then confidence.

    Ties keep the earlier candidate, so the greedy draft wins against equal samples.
    """
    if not pool:
        raise ValueError("no candidates to choose from")
    return max(pool, key=lambda r: (verdict_rank(r, repairable=repairable), bool(r["text"].strip()), r["confidence"]))


def chain_value(steps: Sequence[Mapping[str, Any]]) -> str | None:
    """The last value the chain computed and a verifier checked, written as the chain wrote it.

    A correct claim gives its stated result ("2.2857", not the exact 16/7); a wrong one that was
    kept gives the corrected result, formatted like the original.
    """
    from verifiers import extract_answer

    for step in reversed(steps):
        for verdict in reversed(step.get("verdicts") or []):
            for claim in reversed(verdict.get("claims") or []):
                status = claim.get("status")
                written = claim.get("stated") if status == "correct" else claim.get("expected")
                if status not in ("correct", "wrong") or not written:
                    continue
                value = extract_answer(str(written), strategies=("last_number",))
                return value if value is not None else claim.get("computed_value")
    return None
