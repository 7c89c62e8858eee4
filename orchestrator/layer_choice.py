"""Which decoder layers get high-precision copies: an explicit list, a named slice, or a measured profile.

Specs (for ``--layers`` and policy files):

- ``[3, 7, 11]`` or ``"3,7,11"``: exactly those layers.
- ``"all"``: every layer.
- ``"middle:0.25"``: the central quarter of the stack; ``"deep:0.25"``: the deepest quarter;
  ``"shallow:0.25"``: the first quarter. At least one layer whenever the fraction is above zero.
- ``"profile:PATH"``: the ``k`` most sensitive layers of a JSON profile (format below).

Profile format (written by the profiler, read here)::

    {"model": "qwen2.5-coder-1.5b", "quant": "sim-nf4",
     "layers": [{"index": 0, "restore_kl": 0.41, "quant_kl": 0.02}, ...]}

``quant_kl`` is KL(reference || model with only this layer quantized): how much quantizing it hurts.
``restore_kl`` is KL(reference || quantized model with only this layer restored): what is left after
restoring it, so lower means restoring it helps more. Ranking uses ``restore_kl`` (lowest first) when every
entry has it, else ``quant_kl`` (highest first); ties go to the lower index.

>>> choose_layers(24, "middle:0.25")
[9, 10, 11, 12, 13, 14]
>>> choose_layers(24, "deep:0.125")
[21, 22, 23]
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError
from policies.schema import slice_layers

DEFAULT_PROFILE_K = 4  # layers taken from a profile when k is not given
_SLICES = ("middle", "deep", "shallow")
_SPEC_HELP = "a list of layer indices, '3,7,11', 'all', 'middle:F', 'deep:F', 'shallow:F' or 'profile:PATH'"

LayerSpec = str | Sequence[int]


@dataclass(frozen=True)
class LayerScore:
    """One layer's entry in a sensitivity profile."""

    index: int
    restore_kl: float | None = None  # KL to the reference with only this layer restored (lower = helps more)
    quant_kl: float | None = None  # KL to the reference with only this layer quantized (higher = sensitive)


@dataclass(frozen=True)
class LayerProfile:
    """A per-layer sensitivity profile of one model under one quantization."""

    model: str
    quant: str
    layers: tuple[LayerScore, ...]

    def ranked(self) -> list[int]:
        """Layer indices, most worth restoring first."""
        if self.layers and all(s.restore_kl is not None for s in self.layers):
            return [s.index for s in sorted(self.layers, key=lambda s: (s.restore_kl, s.index))]
        if self.layers and all(s.quant_kl is not None for s in self.layers):
            return [s.index for s in sorted(self.layers, key=lambda s: (-(s.quant_kl or 0.0), s.index))]
        raise InputError("profile entries need restore_kl on every layer, or quant_kl on every layer")

    def to_json(self) -> str:
        """The profile in the file format :func:`read_profile` reads."""
        entries = [
            {k: v for k, v in (("index", s.index), ("restore_kl", s.restore_kl), ("quant_kl", s.quant_kl))
             if v is not None}
            for s in self.layers
        ]  # fmt: skip
        return json.dumps({"model": self.model, "quant": self.quant, "layers": entries}, indent=1)


def read_profile(path: str | Path) -> LayerProfile:
    """Read and validate a profile file; errors name the file and the bad entry."""
    path = Path(path).expanduser()
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise InputError(f"layer profile not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"layer profile {path} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise InputError(f"layer profile {path} needs an object with a 'layers' list")
    scores: list[LayerScore] = []
    seen: set[int] = set()
    for n, entry in enumerate(data["layers"]):
        index = entry.get("index") if isinstance(entry, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise InputError(f"layer profile {path}: entry {n} needs a non-negative integer 'index'")
        if index in seen:
            raise InputError(f"layer profile {path}: layer {index} listed twice")
        seen.add(index)
        values: dict[str, float | None] = {}
        for key in ("restore_kl", "quant_kl"):
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or not math.isfinite(value)):  # fmt: skip
                raise InputError(f"layer profile {path}: layer {index} has a non-numeric {key}: {value!r}")
            values[key] = None if value is None else float(value)
        scores.append(LayerScore(index, values["restore_kl"], values["quant_kl"]))
    return LayerProfile(str(data.get("model", "")), str(data.get("quant", "")), tuple(scores))


def choose_layers(n_layers: int, spec: LayerSpec, *, k: int | None = None) -> list[int]:
    """The sorted, distinct layer indices that ``spec`` names for a model with ``n_layers`` layers.

    ``k`` is how many layers to take from a profile (default :data:`DEFAULT_PROFILE_K`).

    >>> choose_layers(8, [5, 1, 5])
    [1, 5]
    """
    if n_layers < 1:
        raise InputError(f"a model needs at least one layer, got n_layers={n_layers}")
    if isinstance(spec, str):
        return _from_string(n_layers, spec.strip(), k)
    try:
        indices = [_as_index(i) for i in spec]
    except TypeError as exc:
        raise InputError(f"layer spec must be {_SPEC_HELP}; got {spec!r}") from exc
    return _checked(n_layers, indices)


def _from_string(n_layers: int, spec: str, k: int | None) -> list[int]:
    if spec == "all":
        return list(range(n_layers))
    head, sep, tail = spec.partition(":")
    if sep and head == "profile":
        return _from_profile(n_layers, tail, k)
    if sep and head in _SLICES:
        try:
            fraction = float(tail)
        except ValueError:
            raise InputError(f"{head}:F needs a fraction in (0, 1], got {tail!r}") from None
        if not 0 < fraction <= 1:
            raise InputError(f"{head}:F needs a fraction in (0, 1], got {fraction}")
        return slice_layers(head, fraction, n_layers)  # the layers a policy's escalation uses
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts or not all(p.lstrip("-").isdigit() for p in parts):
        raise InputError(f"layer spec must be {_SPEC_HELP}; got {spec!r}")
    return _checked(n_layers, [int(p) for p in parts])


def _from_profile(n_layers: int, path: str, k: int | None) -> list[int]:
    if not path:
        raise InputError("profile:PATH needs a path to a layer profile JSON file")
    take = DEFAULT_PROFILE_K if k is None else k
    if take < 1:
        raise InputError(f"k must be at least 1, got {take}")
    profile = read_profile(path)
    beyond = [s.index for s in profile.layers if s.index >= n_layers]
    if beyond:
        raise InputError(f"layer profile {path} names layers {beyond}, but the model has {n_layers} layers")
    return sorted(profile.ranked()[:take])


def _as_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _checked(n_layers: int, indices: list[int]) -> list[int]:
    if not indices:
        raise InputError("the layer list is empty")
    bad = sorted({i for i in indices if not 0 <= i < n_layers})
    if bad:
        raise InputError(f"layers {bad} out of range: the model has {n_layers} layers (0..{n_layers - 1})")
    return sorted(set(indices))
