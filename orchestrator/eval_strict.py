"""Strict scoring: a row is right only when the model stated its answer.

The evaluation's own scoring is flexible, as GSM8K's usual one is: an answer cut at the token budget is
read by its last number, which is sometimes the right result of an intermediate step and sometimes a step
number that happens to equal the gold answer. Strict scoring counts only an answer the model wrote out
(``\\boxed{}``, "the answer is", "#### N"), so a comparison can be checked for resting on that reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.eval_data import EvalConfig


def strict_marks(rows: Mapping[Any, Mapping[str, Any]], config: EvalConfig) -> dict[Any, tuple[bool, bool]] | None:
    """Per row (same keys): (right, stated) scored strictly, or None where the rows cannot be.

    ``stated``: the text states an answer (``\\boxed{}``, "the answer is", "#### N"); a stated row is
    right when it was scored right. That is the recorded answer: the shipped policies try the last number
    only after the statements, so a stated answer is the one the row was scored on, after the
    orchestrator's final-answer rule where it ran. Self-consistency votes again with the chains that state
    an answer (``votes_stated``); rows written before they kept those are not scored (None), nor are rows
    without text.
    """
    from orchestrator.eval_methods import majority
    from verifiers import answers_match, extract_answer
    from verifiers.answers import STATED_STRATEGIES

    if config.method == "sc":
        if not rows or not all(isinstance(r.get("votes_stated"), list) for r in rows.values()):
            return None
        voted = {key: majority(row["votes_stated"])[0] for key, row in rows.items()}
        return {
            key: (answer is not None and answers_match(answer, str(rows[key]["gold"])) is True, answer is not None)
            for key, answer in voted.items()
        }
    if not all(isinstance(r.get("text"), str) for r in rows.values()):
        return None
    marks = {}
    for key, row in rows.items():
        stated = extract_answer(row["text"], strategies=STATED_STRATEGIES) is not None
        marks[key] = (stated and bool(row.get("correct")), stated)
    return marks
