"""The verifier registry: built-ins and user verifiers join it the same way; failures are "unknown"."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from structlog.testing import capture_logs

from verifiers import (
    UnknownVerifierError,
    Verdict,
    VerifierRegistry,
    check_step,
    get_verifier,
    register_verifier,
    registry,
    run_verifier,
)


@pytest.fixture
def user_verifier() -> Iterator[str]:
    name = "test_no_negatives"

    @register_verifier(name)
    def no_negatives(text: str, context: Mapping[str, Any] | None = None) -> Verdict:
        return Verdict.unknown("looked") if "-" not in text else Verdict(status="wrong", reason="negative")

    yield name
    registry.unregister(name)


def test_builtins_are_registered() -> None:
    assert {"arithmetic", "final_answer"} <= set(registry.names())
    assert get_verifier("arithmetic") is check_step


def test_user_verifier_is_found_by_name(user_verifier: str) -> None:
    assert run_verifier(user_verifier, "a - b").status == "wrong"
    verdict = run_verifier(user_verifier, "ab")
    assert verdict.status == "unknown" and verdict.verifier == user_verifier


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownVerifierError) as info:
        get_verifier("arithmetc")
    message = str(info.value)
    assert "arithmetc" in message and "arithmetic" in message and "final_answer" in message
    assert isinstance(info.value, LookupError)


def test_duplicate_name_needs_replace() -> None:
    reg = VerifierRegistry()
    reg.register("a", check_step)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda text, context=None: Verdict.unknown("other"))
    reg.register("a", lambda text, context=None: Verdict.unknown("other"), replace=True)
    assert reg.get("a")("1 + 1 = 2").status == "unknown"


def test_bad_registrations() -> None:
    reg = VerifierRegistry()
    with pytest.raises(ValueError):
        reg.register("", check_step)
    with pytest.raises(TypeError):
        reg.register("x", 42)  # type: ignore[call-overload]


def test_a_verifier_that_raises_is_cannot_judge() -> None:
    def broken(text: str, context: Mapping[str, Any] | None = None) -> Verdict:
        raise ZeroDivisionError("oops")

    with capture_logs() as logs:
        verdict = run_verifier(broken, "1 + 1 = 2")
    assert verdict.status == "unknown"
    assert "ZeroDivisionError" in verdict.reason and "oops" in verdict.reason
    assert logs and logs[0]["event"] == "verifier_failed" and logs[0]["verifier"] == "broken"


def test_a_verifier_that_returns_junk_is_cannot_judge() -> None:
    verdict = run_verifier(lambda text, context=None: "yes", "1 + 1 = 2")  # type: ignore[arg-type,return-value]
    assert verdict.status == "unknown" and "not a Verdict" in verdict.reason


def test_context_reaches_the_verifier() -> None:
    seen: list[Mapping[str, Any] | None] = []

    def spy(text: str, context: Mapping[str, Any] | None = None) -> Verdict:
        seen.append(context)
        return Verdict.unknown("spy")

    run_verifier(spy, "step", {"question": "q", "previous_steps": ["a"]})
    assert seen == [{"question": "q", "previous_steps": ["a"]}]


FINAL = [
    ("The answer is 18.", {"gold": "18"}, "correct"),
    (r"So \(\boxed{18}\)", {"gold": "18.00"}, "correct"),
    ("The answer is 17.", {"gold": "18"}, "wrong"),
    ("I am not sure.", {"gold": "18"}, "unknown"),
    ("The answer is 18.", None, "unknown"),
    ("#### 5 and the answer is 6", {"gold": "5", "answer_strategies": ["hashes"]}, "correct"),
]


@pytest.mark.parametrize(("text", "context", "status"), FINAL)
def test_final_answer_verifier(text: str, context: dict[str, Any] | None, status: str) -> None:
    assert run_verifier("final_answer", text, context).status == status
