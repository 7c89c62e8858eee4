"""High-precision copies of chosen decoder layers, swapped in and out of a quantized model.

Escalation is a module swap: ``model.model.layers[i]`` is replaced by a copy built from the reference
(unquantized) safetensors folder and put back afterwards. Only the chosen layers' tensors are read
(``model.layers.{i}.*`` via ``safe_open``), so the extra memory is theirs alone, and a swap costs a few
microseconds. The copy is a fresh module of the working layer's own class built from the model config
with the same ``layer_idx``, so a KV cache filled before the swap stays valid (it is only tensors, indexed
by layer) and per-layer attention types (Gemma 3's sliding/full pattern) are kept. That also makes it
work when the working layer holds bitsandbytes ``Linear4bit`` / ``Linear8bitLt`` modules.

Not handled: models whose layers accelerate offloads (``device_map`` with CPU/disk offload hooks) and
compiled or CUDA-graph-captured forwards (a swap changes the modules they captured).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from orchestrator.errors import InputError, ModelNotFoundError, UnsupportedArchitectureError
from orchestrator.quantize import decoder_layers

SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text")
LAYER_PREFIX = "model.layers.{}."  # key prefix of decoder layer i in a CausalLM checkpoint
_KEPT_ATTRS = ("layer_idx", "attention_type", "is_sliding", "sliding_window", "layer_type")


def tensor_bytes(module: nn.Module) -> int:
    """Bytes held by a module's parameters and buffers."""
    tensors = [*module.parameters(), *module.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class LayerPrecision:
    """High-precision copies of some decoder layers of ``model``, read from the ``reference`` folder.

    >>> # precision = LayerPrecision(model, "cache/qwen2.5-1.5b", layers=[10, 11, 12])
    >>> # with precision.escalated():
    >>> #     step = generator.propose(...)   # regenerated with layers 10-12 in full precision
    """

    def __init__(
        self,
        model: Any,
        reference: str | Path,
        layers: Iterable[int],
        *,
        dtype: torch.dtype | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        config = getattr(model, "config", None)
        model_type = getattr(config, "model_type", None)
        if model_type not in SUPPORTED_ARCHITECTURES:
            raise UnsupportedArchitectureError(
                f"high-precision layer copies do not support architecture {model_type!r} "
                f"({type(model).__name__}); supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        self._model = model
        self._blocks = decoder_layers(model)
        n = len(self._blocks)
        chosen = tuple(sorted(set(int(i) for i in layers)))
        bad = [i for i in chosen if not 0 <= i < n]
        if bad:
            raise InputError(f"layers {bad} out of range: the model has {n} decoder layers (0..{n - 1})")
        self.layers: tuple[int, ...] = chosen
        self.reference = Path(reference)
        files = _reference_files(self.reference, chosen)
        self._copies: dict[int, nn.Module] = {}
        self._originals: dict[int, nn.Module] = {}
        for i in chosen:
            working = self._blocks[i]
            tensors = _read_layer(files[i], i)
            self._copies[i] = _build_copy(working, config, i, tensors, dtype, device)
        self.bytes_per_layer: dict[int, int] = {i: tensor_bytes(c) for i, c in self._copies.items()}
        self.extra_bytes: int = sum(self.bytes_per_layer.values())

    @property
    def active(self) -> tuple[int, ...]:
        """Layers whose high-precision copy is in the model now."""
        return tuple(sorted(self._originals))

    def escalate(self, layers: Iterable[int] | None = None) -> None:
        """Swap the copies of ``layers`` (all built ones by default) into the model; active ones stay."""
        for i in self._select(layers):
            if i in self._originals:
                continue
            self._originals[i] = self._blocks[i]
            self._blocks[i] = self._copies[i]

    def restore(self, layers: Iterable[int] | None = None) -> None:
        """Put the working (quantized) layers back: all active ones by default."""
        for i in self._select(layers):
            original = self._originals.pop(i, None)
            if original is not None:
                self._blocks[i] = original

    @contextlib.contextmanager
    def escalated(self, layers: Iterable[int] | None = None) -> Iterator[LayerPrecision]:
        """Escalate for the duration of a ``with`` block; restore what it swapped in, even on exceptions."""
        before = set(self._originals)
        self.escalate(layers)
        swapped = [i for i in self._originals if i not in before]
        try:
            yield self
        finally:
            self.restore(swapped)

    def _select(self, layers: Iterable[int] | None) -> tuple[int, ...]:
        if layers is None:
            return self.layers
        chosen = tuple(int(i) for i in layers)
        missing = sorted(set(chosen) - set(self._copies))
        if missing:
            raise InputError(f"no high-precision copy of layers {missing}; built: {list(self.layers)}")
        return chosen


def _reference_files(folder: Path, layers: tuple[int, ...]) -> dict[int, list[Path]]:
    """For each layer, the safetensors files that hold its tensors (several when the folder is sharded)."""
    if not folder.is_dir():
        raise ModelNotFoundError(f"reference weights folder not found: {folder}")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        out: dict[int, list[Path]] = {}
        for i in layers:
            prefix = LAYER_PREFIX.format(i)
            names = sorted({f for k, f in weight_map.items() if k.startswith(prefix)})
            if not names:
                raise ModelNotFoundError(f"{index} lists no tensors under {prefix!r}")
            out[i] = [folder / name for name in names]
        return out
    single = folder / "model.safetensors"
    if not single.is_file():
        raise ModelNotFoundError(f"no model.safetensors or model.safetensors.index.json in {folder}")
    return {i: [single] for i in layers}


def _read_layer(files: list[Path], layer: int) -> dict[str, torch.Tensor]:
    """The tensors of one decoder layer, keys relative to the layer (``self_attn.q_proj.weight``, ...)."""
    from safetensors import safe_open

    prefix = LAYER_PREFIX.format(layer)
    tensors: dict[str, torch.Tensor] = {}
    for path in files:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open handles are not mappings
                if key.startswith(prefix):
                    tensors[key[len(prefix) :]] = f.get_tensor(key)
    if not tensors:
        raise ModelNotFoundError(f"no tensors under {prefix!r} in {', '.join(str(p) for p in files)}")
    return tensors


def _working_dtype_device(layer: nn.Module) -> tuple[torch.dtype, torch.device]:
    """The compute dtype and device of a working layer: those of its floating-point tensors (norms included,
    which bitsandbytes leaves unquantized)."""
    for t in [*layer.parameters(), *layer.buffers()]:
        if t.dtype.is_floating_point:
            return t.dtype, t.device
    raise InputError("the working layer has no floating-point tensors to take a dtype from")


def _build_copy(
    working: nn.Module,
    config: Any,
    layer: int,
    tensors: dict[str, torch.Tensor],
    dtype: torch.dtype | None,
    device: str | torch.device | None,
) -> nn.Module:
    """A fresh ``type(working)(config, layer)`` holding ``tensors``, in ``dtype`` on ``device``."""
    work_dtype, work_device = _working_dtype_device(working)
    target_dtype = dtype or work_dtype
    target_device = torch.device(device) if device is not None else work_device
    state = {
        k: v.to(device=target_device, dtype=target_dtype if v.dtype.is_floating_point else v.dtype)
        for k, v in tensors.items()
    }
    cls = type(working)
    with torch.device("meta"):
        copy = cls(config, layer)
    try:
        copy.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise InputError(f"reference tensors of layer {layer} do not fit {cls.__name__}: {exc}") from exc
    if any(t.is_meta for t in [*copy.parameters(), *copy.buffers()]):
        # Non-persistent buffers are not in the checkpoint: build for real and copy the weights in.
        copy = cls(config, layer).to(device=target_device, dtype=target_dtype)
        copy.load_state_dict(state, strict=True)
    copy.requires_grad_(False)
    copy.train(working.training)
    _check_same_wiring(working, copy, layer)
    return copy


def _check_same_wiring(working: nn.Module, copy: nn.Module, layer: int) -> None:
    """The copy must route attention exactly as the working layer does (cache index, sliding window)."""
    pattern = re.compile(r"(^|\.)(self_attn|attn)$")
    copies = dict(copy.named_modules())
    for name, w_mod in working.named_modules():
        if name and not pattern.search(name):
            continue
        c_mod = copies.get(name)
        for attr in _KEPT_ATTRS:
            if hasattr(w_mod, attr) and getattr(w_mod, attr) != getattr(c_mod, attr, None):
                raise UnsupportedArchitectureError(
                    f"copy of layer {layer} differs from the working layer in {name or type(working).__name__}."
                    f"{attr}: {getattr(c_mod, attr, None)!r} != {getattr(w_mod, attr)!r}"
                )
