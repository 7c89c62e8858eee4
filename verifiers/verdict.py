"""The records a verifier returns: a three-valued ``Verdict`` made of ``Claim`` s.

"unknown" (cannot judge) is distinct from "wrong": only a claim that was actually
computed can be wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["correct", "wrong", "unknown"]
STATUSES: tuple[Status, ...] = ("correct", "wrong", "unknown")


@dataclass(frozen=True)
class Claim:
    """One checked statement inside a step, e.g. ``12 x 4 = 48``.

    ``span`` covers the whole claim and ``result_span`` the stated result, both as
    ``(start, end)`` offsets into the original step text, for highlighting.
    """

    expression: str  # the computed side as written, e.g. "12 x 4"
    stated: str  # the stated result as written, e.g. "$48"
    status: Status
    span: tuple[int, int]
    result_span: tuple[int, int]
    stated_value: str | None = None  # exact value of the stated side ("48", "1/3")
    computed_value: str | None = None  # exact value of the expression, when it could be computed
    expected: str | None = None  # the stated result corrected, formatted like the original (wrong only)
    reason: str = ""  # why it is unknown or wrong, or how it was accepted ("rounded")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (spans as lists)."""
        data = asdict(self)
        data["span"] = list(self.span)
        data["result_span"] = list(self.result_span)
        return data


@dataclass(frozen=True)
class Verdict:
    """The judgement of one step: ``status`` sums up ``claims``.

    >>> Verdict.from_claims([]).status
    'unknown'
    """

    status: Status
    claims: tuple[Claim, ...] = ()
    corrected_text: str | None = None  # the step with wrong results replaced; None when nothing is wrong
    reason: str = ""  # for "unknown": why nothing could be judged
    verifier: str = ""  # name of the verifier that produced it, when run through the registry
    extra: dict[str, Any] = field(default_factory=dict)  # verifier-specific details

    @property
    def is_correct(self) -> bool:
        return self.status == "correct"

    @property
    def is_wrong(self) -> bool:
        return self.status == "wrong"

    @classmethod
    def from_claims(cls, claims: Iterable[Claim], *, corrected_text: str | None = None, reason: str = "") -> Verdict:
        """Sum claims up: wrong if any is wrong, else correct if any is correct, else unknown."""
        items = tuple(claims)
        statuses = {c.status for c in items}
        status: Status
        if "wrong" in statuses:
            status = "wrong"
        elif "correct" in statuses:
            status = "correct"
        else:
            status = "unknown"
            own = "no claim found" if not items else "; ".join(dict.fromkeys(c.reason for c in items if c.reason))
            reason = f"{own}; {reason}" if reason and own not in reason else (reason or own)
        return cls(status=status, claims=items, corrected_text=corrected_text, reason=reason)

    @classmethod
    def unknown(cls, reason: str) -> Verdict:
        """A verdict that could not judge anything, with the reason."""
        return cls(status="unknown", reason=reason)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "status": self.status,
            "reason": self.reason,
            "verifier": self.verifier,
            "corrected_text": self.corrected_text,
            "claims": [c.to_dict() for c in self.claims],
            **({"extra": self.extra} if self.extra else {}),
        }
