"""Verifiers by name: one registry that built-ins and a user's own verifiers join the same way.

A verifier is any callable ``verifier(step_text, context) -> Verdict``; ``context`` is an
optional mapping (the question, the previous steps, the gold answer). A policy names
verifiers by string; ``run_verifier`` calls one so that whatever it raises becomes a
"cannot judge" verdict naming the exception, never a crash of the caller.

    @register_verifier("no_negative_numbers")
    def no_negatives(text, context=None):
        ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, overload

import structlog

from verifiers.errors import UnknownVerifierError
from verifiers.verdict import Verdict

logger = structlog.get_logger(__name__)

Context = Mapping[str, Any]


class Verifier(Protocol):
    """What a verifier is: called with the step text and an optional context."""

    def __call__(self, text: str, context: Context | None = None, /) -> Verdict: ...


VerifierFn = Callable[[str, Context | None], Verdict]


class VerifierRegistry:
    """Maps names to verifiers. ``register`` works as a call or as a decorator.

    >>> reg = VerifierRegistry()
    >>> @reg.register("always_unknown")
    ... def always_unknown(text, context=None):
    ...     return Verdict.unknown("nothing to check")
    >>> reg.get("always_unknown")("2 + 2 = 4").status
    'unknown'
    >>> reg.names()
    ['always_unknown']
    """

    def __init__(self) -> None:
        self._verifiers: dict[str, VerifierFn] = {}

    @overload
    def register(self, name: str, fn: None = None, *, replace: bool = False) -> Callable[[VerifierFn], VerifierFn]: ...

    @overload
    def register(self, name: str, fn: VerifierFn, *, replace: bool = False) -> VerifierFn: ...

    def register(
        self, name: str, fn: VerifierFn | None = None, *, replace: bool = False
    ) -> VerifierFn | Callable[[VerifierFn], VerifierFn]:
        """Register ``fn`` under ``name`` (or return a decorator that does). A name already
        taken raises ``ValueError`` unless ``replace=True``."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a verifier name must be a non-empty string")

        def add(f: VerifierFn) -> VerifierFn:
            if not callable(f):
                raise TypeError(f"verifier {name!r} must be callable, not {type(f).__name__}")
            if name in self._verifiers and not replace and self._verifiers[name] is not f:
                raise ValueError(f"a verifier named {name!r} is already registered (pass replace=True)")
            self._verifiers[name] = f
            return f

        return add if fn is None else add(fn)

    def unregister(self, name: str) -> None:
        """Remove a verifier (unknown names raise ``UnknownVerifierError``)."""
        self.get(name)
        del self._verifiers[name]

    def get(self, name: str) -> VerifierFn:
        """The verifier registered as ``name``; an unknown name raises ``UnknownVerifierError``
        listing the known ones."""
        try:
            return self._verifiers[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._verifiers)) or "(none)"
            raise UnknownVerifierError(f"unknown verifier {name!r}; known verifiers: {known}") from None

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._verifiers)

    def __contains__(self, name: object) -> bool:
        return name in self._verifiers

    def run(self, verifier: str | VerifierFn, text: str, context: Context | None = None) -> Verdict:
        """Call a verifier (by name or as a callable); an exception becomes "cannot judge".

        An unknown name is the caller's mistake and still raises ``UnknownVerifierError``.
        """
        fn = self.get(verifier) if isinstance(verifier, str) else verifier
        name = verifier if isinstance(verifier, str) else getattr(fn, "__name__", type(fn).__name__)
        try:
            verdict = fn(text, context)
        except Exception as exc:  # a verifier's failure must not crash the caller
            logger.warning("verifier_failed", verifier=name, error=type(exc).__name__, message=str(exc))
            return Verdict(
                status="unknown", reason=f"verifier {name!r} raised {type(exc).__name__}: {exc}", verifier=name
            )
        if not isinstance(verdict, Verdict):
            return Verdict(
                status="unknown",
                reason=f"verifier {name!r} returned {type(verdict).__name__}, not a Verdict",
                verifier=name,
            )
        return dataclasses.replace(verdict, verifier=name) if not verdict.verifier else verdict


registry = VerifierRegistry()  # the default registry; built-ins join it in verifiers.builtins


def register_verifier(name: str, *, replace: bool = False) -> Callable[[VerifierFn], VerifierFn]:
    """Decorator: register a verifier in the default registry.

    >>> @register_verifier("doc_example", replace=True)
    ... def doc_example(text, context=None):
    ...     return Verdict.unknown("example")
    >>> get_verifier("doc_example") is doc_example
    True
    >>> registry.unregister("doc_example")
    """
    return registry.register(name, replace=replace)


def get_verifier(name: str) -> VerifierFn:
    """The verifier registered as ``name`` in the default registry.

    >>> get_verifier("arithmetic")("2 + 2 = 5").status
    'wrong'
    """
    return registry.get(name)


def run_verifier(verifier: str | VerifierFn, text: str, context: Context | None = None) -> Verdict:
    """Run a verifier so that it cannot crash the caller: whatever it raises is reported as
    status "unknown" with a reason naming the exception.

    >>> def broken(text, context=None):
    ...     raise RuntimeError("boom")
    >>> from structlog.testing import capture_logs
    >>> with capture_logs():  # it also logs a warning "verifier_failed"
    ...     v = run_verifier(broken, "1 + 1 = 2")
    >>> v.status, v.reason
    ('unknown', "verifier 'broken' raised RuntimeError: boom")
    """
    return registry.run(verifier, text, context)
