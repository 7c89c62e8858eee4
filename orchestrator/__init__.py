"""quantized-slm: drive a quantized small language model through a chain of thought, one verified step at a time."""

from orchestrator.errors import (
    CatalogError,
    InputError,
    ModelNotFoundError,
    PolicyError,
    QslmError,
    QuantizationError,
    UnsupportedArchitectureError,
)

__all__ = [
    "CatalogError",
    "InputError",
    "ModelNotFoundError",
    "PolicyError",
    "QslmError",
    "QuantizationError",
    "UnsupportedArchitectureError",
]
