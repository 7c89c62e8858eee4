"""quantized-slm: drive a quantized small language model through a chain of thought, one verified step at a time.

>>> from orchestrator import solve                                   # doctest: +SKIP
>>> solve("Tom has 3 bags of 4 apples. How many apples?").answer    # doctest: +SKIP
'12'
"""

from typing import TYPE_CHECKING, Any

from orchestrator.errors import (
    CatalogError,
    InputError,
    ModelNotFoundError,
    PolicyError,
    QslmError,
    QuantizationError,
    UnsupportedArchitectureError,
)

if TYPE_CHECKING:
    from orchestrator.api import Orchestrator, SolveResult, solve

_LAZY = {"solve": "orchestrator.api", "Orchestrator": "orchestrator.api", "SolveResult": "orchestrator.api"}


def __getattr__(name: str) -> Any:
    """Import the heavy public API (torch, transformers) only when it is used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")


__all__ = [
    "CatalogError",
    "InputError",
    "ModelNotFoundError",
    "Orchestrator",
    "PolicyError",
    "QslmError",
    "QuantizationError",
    "SolveResult",
    "UnsupportedArchitectureError",
    "solve",
]
