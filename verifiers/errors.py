"""The exceptions of the verifiers package, under the project's root ``QslmError``::

    QslmError
    ├── InputError
    │   └── ExpressionError          text that is not a supported arithmetic expression
    │       └── LimitExceededError   too long, too deep, too many digits, power too large
    └── UnknownVerifierError (also LookupError)  a verifier name nobody registered

Inside the package an ``ExpressionError`` becomes a "cannot judge" verdict; callers only
see ``UnknownVerifierError`` (from ``get_verifier``) and ``InputError`` (bad arguments).
"""

from __future__ import annotations

from orchestrator.errors import InputError, QslmError


class ExpressionError(InputError):
    """The text is not an arithmetic expression this package can evaluate exactly."""


class LimitExceededError(ExpressionError):
    """The expression is over a safety cap (length, nesting, digits, size of a power)."""


class UnknownVerifierError(QslmError, LookupError):
    """A verifier name that is not in the registry; the message lists the known names."""

    def __str__(self) -> str:  # LookupError would quote the message like a key
        return str(self.args[0]) if self.args else ""
