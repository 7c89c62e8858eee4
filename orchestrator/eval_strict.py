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

STATED_STRATEGIES = ("boxed", "answer_is", "hashes")  # the answer strategies that need a statement


def strict_marks(rows: Mapping[Any, Mapping[str, Any]], config: EvalConfig) -> dict[Any, tuple[bool, bool]] | None:
    """Per row (same keys): (right, stated) scored strictly, or None where the rows cannot be.

    ``stated``: the text states an answer by one of the policy's strategies that need a statement. An
    orchestrated row's stated answer then goes through its policy's final-answer rule, replayed on the
    text (see :func:`orchestrator.verdicts.replay_answer`). Self-consistency rows keep one chain's text,
    not every chain's, so they are not scored (None), nor are rows without text.
    """
    from orchestrator.verdicts import replay_answer
    from policies import load_policy
    from verifiers import answers_match, extract_answer

    if config.method == "sc" or not all(isinstance(r.get("text"), str) for r in rows.values()):
        return None
    final = load_policy(config.policy_name).final
    kept = tuple(s for s in final.answer_strategies if s in STATED_STRATEGIES)
    marks = {}
    for key, row in rows.items():
        answer = extract_answer(row["text"], strategies=kept) if kept else None
        stated = answer is not None
        if stated and config.method == "orchestrated":
            answer, _ = replay_answer(row["text"], strategies=kept, on_mismatch=final.on_mismatch)
        marks[key] = (answer is not None and answers_match(answer, str(row["gold"])) is True, stated)
    return marks
