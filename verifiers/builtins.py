"""The built-in verifiers, registered exactly as a user's own would be."""

from __future__ import annotations

from verifiers.answers import answers_match, extract_answer
from verifiers.arithmetic import check_step
from verifiers.registry import Context, register_verifier
from verifiers.verdict import Verdict

register_verifier("arithmetic")(check_step)


@register_verifier("final_answer")
def final_answer(text: str, context: Context | None = None) -> Verdict:
    """Compare the answer written in ``text`` with ``context["gold"]``.

    ``context["answer_strategies"]`` may name the extraction strategies, in order.

    >>> final_answer("So the total is $18. The answer is 18.", {"gold": "18"}).status
    'correct'
    >>> final_answer("The answer is 17.", {"gold": "18"}).status
    'wrong'
    """
    gold = (context or {}).get("gold")
    if gold is None:
        return Verdict.unknown("no gold answer in the context")
    strategies = (context or {}).get("answer_strategies")
    found = extract_answer(text, strategies=strategies) if strategies else extract_answer(text)
    if found is None:
        return Verdict.unknown("no final answer found")
    match = answers_match(found, str(gold))
    extra = {"answer": found, "gold": str(gold)}
    if match is None:
        return Verdict(status="unknown", reason=f"cannot compare {found!r} with {gold!r}", extra=extra)
    if match:
        return Verdict(status="correct", extra=extra)
    return Verdict(status="wrong", reason=f"answer {found!r} is not {gold!r}", extra=extra)
