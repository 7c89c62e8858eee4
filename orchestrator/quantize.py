"""Quantization of the working model: simulated (rounded weights, full speed) or real bitsandbytes modules.

Two families, named so nobody mistakes one for the other:

- ``sim-*`` and ``rtn-*`` round each weight exactly as that quantizer would and keep the result in the
  compute dtype. Same numerics as the packed format, full matmul speed, any device: this is how fidelity
  is studied on a CPU. Only the ``nn.Linear`` weights inside the decoder layers (``model.model.layers``)
  are rounded; embeddings, ``lm_head`` and norms stay as loaded (bitsandbytes leaves them alone too).
- ``bnb-*`` are real bitsandbytes modules (``Linear4bit`` / ``Linear8bitLt``), applied at load time through
  :func:`bnb_config`; they save memory but on a CPU their matmuls are slower than fp32.

The reference weights are not kept here: the loading module keeps the cached safetensors folder, and
:mod:`orchestrator.precision` reads just the layers it needs from it.

>>> spec = parse_quant("rtn-int4", group_size=32)
>>> (spec.kind, spec.bits, spec.group_size)
('sim', 4, 32)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from orchestrator.errors import QuantizationError

if TYPE_CHECKING:
    from transformers import BitsAndBytesConfig

Kind = Literal["none", "sim", "bnb"]
Method = Literal["none", "nf4", "fp4", "int8-rowwise", "rtn"]

NF4_BLOCKSIZE = 64  # bitsandbytes' default block for Linear4bit (what HF's BitsAndBytesConfig uses)
DEFAULT_GROUP_SIZE = 128  # the usual RTN / GPTQ / AWQ group along the input dimension

# bitsandbytes' 4-bit code books (bitsandbytes.functional.get_4bit_type), copied so sim-* needs no bnb.
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)  # fmt: skip
FP4_CODE = (
    0.0, 0.0052083334885537624, 0.6666666865348816, 1.0, 0.3333333432674408, 0.5, 0.1666666716337204, 0.25,
    -0.0, -0.0052083334885537624, -0.6666666865348816, -1.0, -0.3333333432674408, -0.5,
    -0.1666666716337204, -0.25,
)  # fmt: skip

_BNB_CPU_NOTE = (
    "On a CPU it runs but is slower than fp32 (a batch-1 1536×8960 matmul measured 4–11× slower on a "
    "2-core AVX2 CPU): use it for memory, and its sim-* twin to study fidelity."
)


@dataclass(frozen=True)
class _Entry:
    kind: Kind
    bits: int
    method: Method
    help: str


def _rtn_help(bits: int) -> str:
    return (
        f"Round-to-nearest {bits}-bit, group-wise along the input dimension (asymmetric min–max grid with "
        "an integer zero point, as GPTQ's quantizer builds it, without its error compensation); weights "
        "kept in the compute dtype. Full speed; simulation only."
    )


_TABLE: dict[str, _Entry] = {
    "none": _Entry("none", 16, "none", "No quantization: the reference model as loaded."),
    "sim-nf4": _Entry(
        "sim",
        4,
        "nf4",
        "Weights rounded exactly as bitsandbytes NF4 stores them (blocks of 64, absmax scale, no double "
        "quant) and kept in the compute dtype. Same numerics as bnb-nf4, full speed, any device.",
    ),
    "sim-fp4": _Entry(
        "sim",
        4,
        "fp4",
        "Weights rounded exactly as bitsandbytes FP4 stores them (blocks of 64, absmax scale) and kept "
        "in the compute dtype. Same numerics as bnb-fp4, full speed, any device.",
    ),
    "sim-int8": _Entry(
        "sim",
        8,
        "int8-rowwise",
        "Weights rounded as LLM.int8 stores them (row-wise absmax int8) and kept in the compute dtype. "
        "Activations stay unquantized, so bnb-int8 (which also quantizes activations and keeps outlier "
        "columns in fp16) differs slightly. Full speed, any device.",
    ),
    **{f"rtn-int{b}": _Entry("sim", b, "rtn", _rtn_help(b)) for b in range(2, 9)},
    "bnb-nf4": _Entry(
        "bnb", 4, "nf4", "Real bitsandbytes NF4 Linear4bit modules: ~4× smaller weights. " + _BNB_CPU_NOTE
    ),
    "bnb-fp4": _Entry(
        "bnb", 4, "fp4", "Real bitsandbytes FP4 Linear4bit modules: ~4× smaller weights. " + _BNB_CPU_NOTE
    ),
    "bnb-int8": _Entry(
        "bnb",
        8,
        "int8-rowwise",
        "Real bitsandbytes LLM.int8 Linear8bitLt modules (int8 weights and activations, outliers in fp16): "
        "~2× smaller than fp16. On a CPU it runs, casts activations to fp16 and is slower than fp32 "
        "(measured: a batch-1 matmul ~9× slower).",
    ),
}

QUANT_NAMES: tuple[str, ...] = tuple(_TABLE)
QUANT_HELP: dict[str, str] = {name: entry.help for name, entry in _TABLE.items()}


@dataclass(frozen=True)
class QuantSpec:
    """A parsed quantization name.

    ``group_size`` is how many weights share one scale: 64 for NF4/FP4 (bitsandbytes' block), -1 for a
    whole row (int8 row-wise absmax), the requested group for ``rtn-*``, 0 for ``none``.
    """

    name: str
    kind: Kind
    bits: int
    group_size: int
    method: Method

    @property
    def help(self) -> str:
        return QUANT_HELP[self.name]


@dataclass(frozen=True)
class QuantReport:
    """What :func:`simulate_quantization_` changed."""

    spec: QuantSpec
    layers: tuple[int, ...]  # decoder layers touched
    n_tensors: int  # Linear weights rounded
    n_params: int  # weights rounded
    mean_abs_error: float  # mean |w - q(w)| over all rounded weights
    max_abs_error: float
    rel_error: float  # mean |w - q(w)| / mean |w|


def parse_quant(name: str, group_size: int = DEFAULT_GROUP_SIZE) -> QuantSpec:
    """Turn a quantization name into a :class:`QuantSpec`; unknown names list the valid ones.

    >>> parse_quant("sim-nf4").group_size
    64
    """
    entry = _TABLE.get(name.strip().lower())
    if entry is None:
        raise QuantizationError(f"unknown quantization {name!r}; valid names: {', '.join(QUANT_NAMES)}")
    if entry.method == "rtn":
        if not isinstance(group_size, int) or group_size < 1:
            raise QuantizationError(f"group size must be a positive integer, got {group_size!r}")
        group = group_size
    elif entry.method in ("nf4", "fp4"):
        group = NF4_BLOCKSIZE
    elif entry.method == "int8-rowwise":
        group = -1
    else:
        group = 0
    return QuantSpec(name=name.strip().lower(), kind=entry.kind, bits=entry.bits, group_size=group,
                     method=entry.method)  # fmt: skip


# ---------------------------------------------------------------------------------------------- rounders


def _code_roundtrip(w: Tensor, code: tuple[float, ...], blocksize: int) -> Tensor:
    """Blockwise absmax + nearest code-book entry over the flattened tensor, as bitsandbytes' quantize_4bit.

    Mirrors bnb's reference kernel step by step (fp32, multiply by the reciprocal absmax, clamp, bucketize
    on the midpoints, ties to the lower entry) so results are bit-identical, not merely close.
    """
    if blocksize < 1:
        raise QuantizationError(f"blocksize must be positive, got {blocksize}")
    table = torch.tensor(sorted(code), dtype=torch.float32, device=w.device)
    bounds = (table[:-1] + table[1:]) / 2
    flat = w.reshape(-1).float()
    n = flat.numel()
    rem = n % blocksize
    full = n - rem
    parts = []
    if full:
        blocks = flat[:full].reshape(-1, blocksize)
        absmax = blocks.abs().max(dim=-1).values
        scaled = torch.clamp(blocks * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1)
        parts.append((table[torch.bucketize(scaled, bounds)] * absmax.view(-1, 1)).reshape(-1))
    if rem:
        tail = flat[full:]
        am = tail.abs().max().clamp(min=1e-38)
        scaled = torch.clamp(tail / am, -1, 1)
        parts.append(table[torch.bucketize(scaled, bounds)] * am)
    out = torch.cat(parts) if len(parts) > 1 else parts[0]
    return out.reshape(w.shape).to(w.dtype)


def nf4_roundtrip(w: Tensor, blocksize: int = NF4_BLOCKSIZE) -> Tensor:
    """``w`` rounded to bitsandbytes NF4 (absmax blocks of ``blocksize`` over the flattened tensor).

    Equals ``dequantize_4bit(*quantize_4bit(w, blocksize, quant_type="nf4"))``, cast to ``w.dtype``.

    >>> nf4_roundtrip(torch.tensor([1.0, -0.5, 0.25, 0.0]), blocksize=4).tolist()
    [1.0, -0.5250730514526367, 0.24611230194568634, 0.0]
    """
    return _code_roundtrip(w, NF4_CODE, blocksize)


def fp4_roundtrip(w: Tensor, blocksize: int = NF4_BLOCKSIZE) -> Tensor:
    """``w`` rounded to bitsandbytes FP4 (absmax blocks of ``blocksize`` over the flattened tensor)."""
    return _code_roundtrip(w, FP4_CODE, blocksize)


def int8_rowwise_roundtrip(w: Tensor) -> Tensor:
    """``w`` rounded as LLM.int8 stores a weight: per row, ``round(w * 127 / absmax)`` then back.

    Equals bitsandbytes' ``int8_vectorwise_dequant(*int8_vectorwise_quant(w)[:2])`` (threshold 0, so no
    outlier columns), cast to ``w.dtype``; an all-zero row stays zero (bnb would produce NaN codes there).

    >>> int8_rowwise_roundtrip(torch.tensor([[1.0, 0.5, -0.25]])).tolist()
    [[1.0, 0.5039370059967041, -0.25196850299835205]]
    """
    if w.dim() != 2:
        raise QuantizationError(f"row-wise int8 needs a 2-d weight, got shape {tuple(w.shape)}")
    stats = w.abs().max(dim=1).values.float()
    safe = torch.where(stats == 0, torch.ones_like(stats), stats)
    q = torch.round(w * (127.0 / safe.unsqueeze(-1))).to(torch.int8)
    return (q * stats.view(-1, 1) * 7.874015718698502e-3).to(w.dtype)  # bnb's 1/127, in the same order


def rtn_roundtrip(w: Tensor, bits: int, group_size: int = DEFAULT_GROUP_SIZE) -> Tensor:
    """``w`` rounded to ``bits``-bit integers, one scale and zero point per group of each row.

    The grid is GPTQ's (its ``Quantizer`` with ``sym=False``): per group, ``lo = min(min w, 0)``,
    ``hi = max(max w, 0)``, ``scale = (hi - lo) / (2**bits - 1)``, ``zero = round(-lo / scale)``,
    ``q = clamp(round(w / scale) + zero, 0, 2**bits - 1)``, back as ``scale * (q - zero)``. Keeping 0 in
    the range makes ``zero`` a valid code, so every weight lands within ``scale / 2`` of its original
    (plus float rounding). Groups run along the last (input) dimension; a row shorter than the group is
    one group and a ragged tail is a group of its own. Computed in fp32, returned in ``w.dtype``.

    >>> rtn_roundtrip(torch.tensor([[0.0, 0.1, 0.2, 0.3]]), bits=2, group_size=4).tolist()
    [[0.0, 0.10000000149011612, 0.20000000298023224, 0.30000001192092896]]
    """
    if not 2 <= bits <= 8:
        raise QuantizationError(f"RTN bit width must be 2..8, got {bits}")
    if group_size < 1:
        raise QuantizationError(f"group size must be positive, got {group_size}")
    if w.dim() == 0:
        raise QuantizationError("cannot quantize a scalar")
    x = w.float().reshape(-1, w.shape[-1])
    cols = x.shape[1]
    g = min(group_size, cols)
    full = cols - cols % g
    parts = [_rtn_groups(x[:, :full].reshape(x.shape[0], -1, g), bits).reshape(x.shape[0], full)]
    if full < cols:
        parts.append(_rtn_groups(x[:, full:].unsqueeze(1), bits).reshape(x.shape[0], cols - full))
    out = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
    return out.reshape(w.shape).to(w.dtype)


def _rtn_groups(x: Tensor, bits: int) -> Tensor:
    """RTN over the last dimension of a (rows, groups, group) fp32 tensor."""
    maxq = 2**bits - 1
    lo = x.amin(dim=-1, keepdim=True).clamp(max=0)
    hi = x.amax(dim=-1, keepdim=True).clamp(min=0)
    empty = (lo == 0) & (hi == 0)
    lo = torch.where(empty, -torch.ones_like(lo), lo)  # an all-zero group: any grid keeps it at zero
    hi = torch.where(empty, torch.ones_like(hi), hi)
    scale = (hi - lo) / maxq
    zero = torch.round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def rtn_scale(w: Tensor, bits: int, group_size: int = DEFAULT_GROUP_SIZE) -> Tensor:
    """The per-weight RTN step ``scale`` (same shape as ``w``, fp32), for checking the ``scale / 2`` bound."""
    x = w.float().reshape(-1, w.shape[-1])
    cols = x.shape[1]
    g = min(group_size, cols)
    bounds = list(range(0, cols - cols % g, g)) + ([cols - cols % g] if cols % g else [])
    out = torch.empty_like(x)
    for start in bounds:
        end = min(start + g, cols)
        grp = x[:, start:end]
        lo = grp.amin(dim=1, keepdim=True).clamp(max=0)
        hi = grp.amax(dim=1, keepdim=True).clamp(min=0)
        width = torch.where(hi - lo == 0, torch.full_like(lo, 2.0), hi - lo)
        out[:, start:end] = (width / (2**bits - 1)).expand_as(grp)
    return out.reshape(w.shape)


def roundtrip(w: Tensor, spec: QuantSpec) -> Tensor:
    """``w`` rounded as ``spec``'s quantizer would, in ``w.dtype`` (``none`` returns ``w`` itself)."""
    rounder = _ROUNDERS.get(spec.method)
    if spec.kind == "bnb":
        raise QuantizationError(
            f"{spec.name} is applied by bitsandbytes at load time (see bnb_config); "
            f"use sim-{spec.name[4:]} to round weights in place"
        )
    if spec.kind == "none" or rounder is None:
        return w
    return rounder(w, spec)


_ROUNDERS: dict[str, Callable[[Tensor, QuantSpec], Tensor]] = {
    "nf4": lambda w, s: nf4_roundtrip(w, s.group_size),
    "fp4": lambda w, s: fp4_roundtrip(w, s.group_size),
    "int8-rowwise": lambda w, _s: int8_rowwise_roundtrip(w),
    "rtn": lambda w, s: rtn_roundtrip(w, s.bits, s.group_size),
}


# ------------------------------------------------------------------------------------------ model level


def decoder_layers(model: Any) -> nn.ModuleList:
    """The model's decoder layers (``model.model.layers``), or a clear error naming what was found."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if not isinstance(layers, nn.ModuleList):
        model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise QuantizationError(
            f"{type(model).__name__} ({model_type}) has no decoder layers at model.model.layers; "
            "expected a causal LM such as LlamaForCausalLM, Qwen2ForCausalLM or Gemma3ForCausalLM"
        )
    return layers


def is_bnb_module(module: nn.Module) -> bool:
    """True for bitsandbytes' quantized Linear modules (which subclass ``nn.Linear``)."""
    return type(module).__module__.startswith("bitsandbytes")


@torch.no_grad()
def simulate_quantization_(model: Any, spec: QuantSpec, *, layers: Iterable[int] | None = None) -> QuantReport:
    """Round, in place, the ``nn.Linear`` weights of the chosen decoder layers (all by default).

    Embeddings, ``lm_head``, norms and biases are left as they are. Returns counts and errors.
    """
    if spec.kind == "bnb":
        roundtrip(torch.empty(0), spec)  # raises the explanatory error
    blocks = decoder_layers(model)
    chosen = tuple(range(len(blocks))) if layers is None else tuple(sorted(set(layers)))
    for i in chosen:
        if not 0 <= i < len(blocks):
            raise QuantizationError(f"layer {i} out of range: the model has {len(blocks)} decoder layers")
    n_tensors = n_params = 0
    err_sum = abs_sum = 0.0
    err_max = 0.0
    if spec.kind == "none":
        return QuantReport(spec, chosen, 0, 0, 0.0, 0.0, 0.0)
    for i in chosen:
        for name, module in blocks[i].named_modules():
            if is_bnb_module(module):
                raise QuantizationError(f"layer {i} {name} is already a bitsandbytes module; load unquantized")
            if not isinstance(module, nn.Linear) or not module.weight.dtype.is_floating_point:
                continue
            w = module.weight
            q = roundtrip(w.data, spec)
            diff = (w.data.float() - q.float()).abs()
            err_sum += diff.sum().item()
            err_max = max(err_max, diff.max().item() if diff.numel() else 0.0)
            abs_sum += w.data.float().abs().sum().item()
            w.data.copy_(q)
            n_tensors += 1
            n_params += w.numel()
    mean = err_sum / n_params if n_params else 0.0
    rel = err_sum / abs_sum if abs_sum else 0.0
    return QuantReport(spec, chosen, n_tensors, n_params, mean, err_max, rel)


# ---------------------------------------------------------------------------------------- bitsandbytes


def bnb_config(spec: QuantSpec, compute_dtype: torch.dtype | None = None) -> BitsAndBytesConfig:
    """The ``BitsAndBytesConfig`` for a ``bnb-*`` spec (no double quant, so it matches ``sim-*``).

    ``compute_dtype`` is what 4-bit weights are dequantized to for the matmul (fp32 by default; bf16 is
    roughly twice as fast on a CPU with AVX-512 BF16, and on GPUs).
    """
    if spec.kind != "bnb":
        raise QuantizationError(f"{spec.name} is not a bitsandbytes quantization (bnb-nf4, bnb-fp4, bnb-int8)")
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError as exc:
        raise QuantizationError(f"{spec.name} needs bitsandbytes: pip install bitsandbytes ({exc})") from exc
    if spec.bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=spec.method,
        bnb_4bit_compute_dtype=compute_dtype or torch.float32,
        bnb_4bit_use_double_quant=False,
    )


# Device types bitsandbytes 0.50 has backends for and that load and run a model there. Measured on CPU:
# nf4, fp4 and int8 all load through from_pretrained and run a forward (int8 casts activations to fp16).
_BNB_DEVICE_TYPES = {"cpu": ("nf4", "fp4", "int8-rowwise"), "cuda": ("nf4", "fp4", "int8-rowwise"),
                     "xpu": ("nf4", "fp4", "int8-rowwise")}  # fmt: skip


def check_device_supports(spec: QuantSpec, device: str) -> None:
    """Raise :class:`QuantizationError` if ``spec`` cannot run on ``device`` ("cpu", "cuda", "cuda:1", ...).

    Simulated quantizations run wherever torch does; ``bnb-*`` needs bitsandbytes and a backend for the
    device type.
    """
    if spec.kind != "bnb":
        return
    device_type = str(device).split(":")[0].strip().lower()
    methods = _BNB_DEVICE_TYPES.get(device_type)
    if methods is None or spec.method not in methods:
        raise QuantizationError(
            f"{spec.name} cannot run on {device!r}: bitsandbytes supports it on "
            f"{', '.join(sorted(t for t, m in _BNB_DEVICE_TYPES.items() if spec.method in m))}; "
            f"use sim-{spec.name[4:]} for the same numerics on any device"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise QuantizationError(f"{spec.name} needs bitsandbytes: pip install bitsandbytes ({exc})") from exc
    if device_type == "cuda" and not torch.cuda.is_available():
        raise QuantizationError(f"{spec.name} on {device!r}: torch sees no CUDA device")
    if device_type == "xpu" and not (hasattr(torch, "xpu") and torch.xpu.is_available()):
        raise QuantizationError(f"{spec.name} on {device!r}: torch sees no XPU device")
