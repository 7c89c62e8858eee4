"""Which escalation layers buy back the most? Candidate layer choices compared on held-out text.

A profile ranks layers one at a time on its calibration text; a policy then restores several together on
other text. This measures what counts for escalation: the fully quantized model with *a set* of layers
restored, teacher-forced on texts the profile never saw, against the reference — KL, top-1 agreement,
the same per key-token class, and the bytes the high-precision copies cost. Choices with the same number
of layers cost the same memory, so they compare directly.

One model object again (see :mod:`orchestrator.profile`): reference weights are read back layer by layer
from the safetensors folder, and the model ends bit-identical to how it started.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from orchestrator.errors import InputError, QuantizationError
from orchestrator.files import write_json
from orchestrator.layer_choice import LayerSpec, choose_layers
from orchestrator.profile import ClassStats, _Calibration, _linear_weights, _per_class, _put, _References
from orchestrator.profile_cli import DEFAULT_BATCH, DEFAULT_MAX_TOKENS, DEFAULT_TOP_K
from orchestrator.quantize import decoder_layers, parse_quant, simulate_quantization_

if TYPE_CHECKING:
    from orchestrator.loading import LoadedModel

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ChoiceStats:
    """The quantized model with one set of layers restored, against the reference."""

    name: str
    spec: str
    layers: list[int]
    bytes: int  # the copies of these layers' linear weights at the model's dtype (what escalation holds)
    kl: float
    top1_agreement: float
    recovered: float  # share of the fully quantized model's KL that restoring these layers removes
    classes: dict[str, ClassStats] = field(default_factory=dict)


@dataclass
class LayerChoiceReport:
    """Every choice measured on the same texts; ``quantized`` is the model with nothing restored."""

    model: str
    quant: str
    n_texts: int
    n_tokens: int
    quantized_kl: float
    quantized_top1: float
    choices: list[ChoiceStats]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def read(cls, path: str | Path) -> LayerChoiceReport:
        """Read a file :meth:`write` wrote; anything else is an InputError naming it."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            choices = [
                ChoiceStats(**{**c, "classes": {k: ClassStats(**v) for k, v in c["classes"].items()}})
                for c in data.pop("choices")
            ]
            return cls(**data, choices=choices)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InputError(f"{path} is not a layer-choice report written by qslm profile --compare: {exc}") from None

    def table(self) -> str:
        """A Markdown table, best choice first."""
        lines = [
            f"{self.model} {self.quant}: {self.n_texts} texts, {self.n_tokens} predicted tokens; nothing restored: "
            f"KL {self.quantized_kl:.4f}, top-1 agreement {self.quantized_top1:.1%}",
            "",
            "| choice | layers | MiB | KL | KL removed | top-1 agreement | number-token KL |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for c in sorted(self.choices, key=lambda c: c.kl):
            number = c.classes.get("number")
            lines.append(
                f"| {c.name} | {','.join(map(str, c.layers))} | {c.bytes / 2**20:.1f} | {c.kl:.4f} | "
                f"{c.recovered:.1%} | {c.top1_agreement:.1%} | {number.kl if number else float('nan'):.4f} |"
            )
        return "\n".join(lines)


def compare_layer_choices(
    model: str | LoadedModel,
    *,
    quant: str,
    choices: Mapping[str, LayerSpec],
    texts: Sequence[str],
    profile_layers: int = 4,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = DEFAULT_BATCH,
    top_k: int = DEFAULT_TOP_K,
    group_size: int = 128,
    device: str = "auto",
    dtype: str | None = None,
    progress: bool = True,
) -> LayerChoiceReport:
    """Measure each named layer choice (``choices``: name → spec as a policy writes it) under ``quant``.

    ``profile_layers`` is how many layers a ``profile:PATH`` spec takes.
    """
    from orchestrator.loading import LoadedModel, load

    if not choices:
        raise InputError("name at least one layer choice to compare")
    spec = parse_quant(quant, group_size=group_size)
    if spec.kind not in ("sim", "rtn"):
        raise QuantizationError(f"layer choices are compared under simulated quantization (sim-*, rtn-*), not {quant}")
    started = time.perf_counter()
    loaded = model if isinstance(model, LoadedModel) else load(model, quant="none", device=device, dtype=dtype,
                                                                 progress=progress)  # fmt: skip
    if loaded.quant.kind != "none" or loaded.reference is None:
        raise InputError("comparing layer choices needs the unquantized model with its reference folder")
    hf = loaded.model
    blocks = decoder_layers(hf)
    n_layers = len(blocks)
    picked = {name: choose_layers(n_layers, s, k=profile_layers) for name, s in choices.items()}
    refs = _References(loaded.reference, n_layers)
    calib = _Calibration(hf, loaded.tokenizer, list(texts), max_tokens=max_tokens, batch_size=batch_size,
                         top_k=top_k)  # fmt: skip
    stats: list[ChoiceStats] = []
    try:
        for i in range(n_layers):
            _put(blocks[i], refs.read(i), i, check=True)
        calib.record_reference()
        simulate_quantization_(hf, spec)
        base = calib.divergence(capture=True)
        for name, layers in picked.items():
            rounded = {i: {k: w.detach().clone() for k, w in _linear_weights(blocks[i]).items()} for i in layers}
            for i in layers:
                _put(blocks[i], refs.read(i), i)
            div = calib.divergence(start=min(layers))
            for i in layers:
                _put(blocks[i], rounded[i], i)
            size = sum(w.numel() * w.element_size() for i in layers for w in _linear_weights(blocks[i]).values())
            recovered = 1.0 - div.mean_kl / base.mean_kl if base.mean_kl > 0 else 0.0
            stats.append(ChoiceStats(name, _spec_text(choices[name]), layers, size, div.mean_kl, div.top1, recovered,
                                     _per_class(calib.classes, div)))  # fmt: skip
            log.info("layer_choice", name=name, layers=layers, kl=round(div.mean_kl, 5), recovered=round(recovered, 3))
    finally:
        calib.layer_inputs = []
        for i in range(n_layers):
            _put(blocks[i], refs.read(i), i)
    return LayerChoiceReport(
        model=loaded.name, quant=spec.name, n_texts=calib.n_texts, n_tokens=calib.n_tokens,
        quantized_kl=base.mean_kl, quantized_top1=base.top1, choices=stats,
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip


def _spec_text(spec: LayerSpec) -> str:
    return spec if isinstance(spec, str) else ",".join(str(i) for i in spec)
