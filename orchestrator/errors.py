"""The exceptions of quantized-slm.

Every error the library raises on purpose derives from ``QslmError``; the CLI and the
HTTP layer turn them into messages and status codes, nowhere else::

    QslmError
    ├── InputError                   bad argument or empty question
    ├── ModelNotFoundError           unknown catalog name, missing path or file
    ├── CatalogError                 fetch, assembly, checksum or conversion failed
    ├── QuantizationError            a quantization the device or model cannot do
    ├── UnsupportedArchitectureError layer copies for an architecture we do not know
    ├── PolicyError                  a policy file or value that does not validate
    └── GenerationError              the model's output cannot be decoded from (non-finite logits)
"""

from __future__ import annotations


class QslmError(Exception):
    """Root of every error raised on purpose by quantized-slm."""


class InputError(QslmError, ValueError):
    """An argument or a question the library cannot work with."""


class ModelNotFoundError(QslmError, LookupError):
    """A model name, path or file that cannot be found."""


class CatalogError(QslmError):
    """Fetching, assembling, verifying or converting a catalog model failed."""


class QuantizationError(QslmError, ValueError):
    """A quantization that is unknown or cannot run on the chosen device."""


class UnsupportedArchitectureError(QslmError, NotImplementedError):
    """High-precision layer copies were asked for an architecture we do not support."""


class PolicyError(QslmError, ValueError):
    """A policy that does not validate; the message names the offending key."""


class GenerationError(QslmError, RuntimeError):
    """The model produced a next-token distribution that cannot be sampled (NaN or infinite logits): a fault of
    the model or its numerics (an fp16 overflow, say), not of the request."""
