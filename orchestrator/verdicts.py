"""Verifier verdicts as plain data, and the choices the graph makes from them.

Verifiers return rich objects; the graph keeps JSON-ready dicts (they go through the
checkpointer and into the trace). A verifier that raises is "cannot judge", never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_RANK = {"wrong": 0, "unknown": 1, "correct": 2}
_FRAC = re.compile(r"\\[dt]?frac\b")  # a LaTeX fraction, whose last number is its denominator
_FRAC_WHOLE = re.compile(r"\\[dt]?frac\s*\{[^{}]*\}\s*\{[^{}]*\}")
_OPERATOR = re.compile(r"[-+*/×÷]|\\(?:times|cdot|div)\b")


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


def checked_values(steps: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None]]:
    """Every value the chain computed and a verifier checked, in order: (as written, exact).

    As written: a correct claim's stated result ("2.2857", not the exact 16/7), a wrong one's corrected
    result formatted like the original; its last number, unless the result is an expression that means
    something else (``\\frac{3}{4}``, kept whole; "0.25 × 100", read as 25). Exact: the checker's value
    of the claim's expression ("16/7"), so a stated answer can match what a step computed in either form.
    """
    values = []
    for step in steps:
        for verdict in step.get("verdicts") or []:
            for claim in verdict.get("claims") or []:
                status = claim.get("status")
                written = claim.get("stated") if status == "correct" else claim.get("expected")
                if status not in ("correct", "wrong") or not written:
                    continue
                exact = claim.get("computed_value")
                value = _written_value(str(written)) or exact
                if value:
                    values.append((str(value), None if exact is None else str(exact)))
    return values


def _written_value(written: str) -> str | None:
    """The value of a claim's written result: its last number ("$48", "25%"), unless the result is an
    expression that means something else: a lone LaTeX fraction is kept as written, "0.25 × 100" becomes
    25 and "20% - 5%" 15%. Our own parser only: this runs on every checked claim of a solve."""
    from verifiers import answer_value, extract_answer

    last = extract_answer(written, strategies=("last_number",))
    whole = answer_value(written)
    if whole is None or (last is not None and answer_value(last) == whole):
        return last
    if _FRAC.search(written) and not _OPERATOR.search(_FRAC_WHOLE.sub("", written)):
        return written.strip()
    if "%" in written:
        return f"{_number(whole * 100)}%"
    return _number(whole)


def _number(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else str(value)


def stated_answer(text: str, strategies: Sequence[str]) -> tuple[str | None, bool]:
    """The answer ``text`` gives by the first of ``strategies`` that finds one, and whether the text states
    it (``\\boxed{}``, "the answer is", "#### N") rather than only ending on a number."""
    from verifiers import extract_answer
    from verifiers.answers import STATED_STRATEGIES

    answer = extract_answer(text, strategies=tuple(strategies))
    statements = tuple(s for s in strategies if s in STATED_STRATEGIES)
    return answer, answer is not None and bool(statements) and extract_answer(text, strategies=statements) is not None


def resolve_answer(
    stated: str | None, values: Sequence[tuple[str, str | None]], on_mismatch: str, *, explicit: bool = True
) -> tuple[str | None, str]:
    """The final answer and how it was reached, from the stated answer and the chain's checked values
    (:func:`checked_values`).

    ``on_mismatch`` (a policy's ``final.on_mismatch``) settles a stated answer that differs from the
    last checked value; with no stated answer the last checked value answers. ``prefer_supported`` keeps
    an ``explicit`` answer (one the text states, not its last number) that some checked step computed.
    """
    from verifiers import answers_match

    chain = values[-1][0] if values else None
    if chain is None:
        return stated, "stated"
    if stated is None:
        return chain, "no stated answer; the chain's last computed value"
    if answers_match(stated, chain):
        return stated, "stated"
    if on_mismatch == "prefer_supported" and explicit and _computed(stated, values):
        return stated, "stated answer kept: a checked step computed it"
    if on_mismatch in ("prefer_chain", "prefer_supported"):
        return chain, "chain preferred over stated answer"
    if on_mismatch == "flag":
        return stated, "flagged: stated answer differs from the chain's last computed value"
    return stated, "stated answer kept over the chain's last computed value"


def _computed(stated: str, values: Sequence[tuple[str, str | None]]) -> bool:
    """Whether some checked value, written or exact, is ``stated`` (each distinct value compared once)."""
    from verifiers import answers_match

    forms = dict.fromkeys(form for pair in values for form in pair if form is not None)
    return any(answers_match(stated, form) for form in forms)


def replay_answer(
    text: str, *, strategies: Sequence[str], on_mismatch: str, cut: bool = False, verifier: str = "arithmetic"
) -> tuple[str | None, str]:
    """The answer a finished chain's ``text`` gets under an ``on_mismatch`` rule, without the model.

    The chain's checked values are found again by running ``verifier`` over each line of the text as
    written (corrections applied), so a stored evaluation row can be rescored under each rule. ``cut``:
    the text ran out of budget, so its last word is left out of checking, as the solve left it out.
    """
    from verifiers import run_verifier

    judged = split_unfinished(text)[0] if cut else text
    steps = [{"verdicts": [run_verifier(verifier, line, {}).to_dict()]} for line in judged.splitlines() if line.strip()]
    stated, explicit = stated_answer(text, strategies)
    return resolve_answer(stated, checked_values(steps), on_mismatch, explicit=explicit)
