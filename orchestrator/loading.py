"""The one module that loads models: catalog names, Hugging Face ids, local folders and GGUF files.

Everything else receives a loaded model and tokenizer; heavy imports happen inside functions.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from orchestrator.errors import CatalogError, InputError, ModelNotFoundError
from orchestrator.quantize import (
    QuantReport,
    QuantSpec,
    bnb_config,
    check_device_supports,
    parse_quant,
    simulate_quantization_,
)

log = structlog.get_logger(__name__)


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantize a GGUF file once into a safetensors folder (fp32), so later loads take seconds.

    Writes into a sibling temporary folder and renames it at the end: an interrupted
    conversion leaves nothing half-written at ``out_dir``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32
        )
        tokenizer: Any = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        # The weights are now plain fp32 tensors; drop the GGUF marker so they serialise as such.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CatalogError(f"could not convert {gguf_path} to safetensors: {exc}") from exc


DEVICES = ("auto", "cpu", "cuda")


@dataclass
class LoadedModel:
    """A model ready for generation, with where its reference-precision weights live."""

    model: Any
    tokenizer: Any
    name: str  # what the user asked for
    reference: Path | None  # safetensors folder with the unquantized weights (for layer copies)
    quant: QuantSpec
    device: str
    seconds: float  # wall time of the load, quantization included
    quant_report: QuantReport | None = None

    @property
    def architecture(self) -> str:
        return str(getattr(self.model.config, "model_type", "unknown"))

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)


def pick_device(device: str = "auto") -> str:
    """``auto`` means CUDA when there is one, else the CPU."""
    import torch

    if device not in DEVICES and not device.startswith("cuda:"):
        raise InputError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)} (or cuda:N)")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but this machine has no CUDA device")
    return device


def resolve_source(model: str, *, progress: bool = True) -> Path:
    """Turn a catalog name, a local folder, a GGUF file or a Hugging Face id into a safetensors folder.

    Catalog names are fetched and converted once (cached); a GGUF file is converted once into the
    cache; a Hugging Face id goes through the hub's own cache (only where a hub is reachable).
    """
    from orchestrator import catalog

    if not model or not model.strip():
        raise InputError("no model given")
    names = {e.name for e in catalog.entries()}
    if model in names:
        return catalog.ensure_ready(model, progress=progress)
    path = Path(model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file {path} does not exist")
        stat = path.stat()
        out = catalog.qslm_home() / "converted" / f"{path.stem}-{stat.st_size}"
        if not (out / "config.json").is_file():
            convert_gguf(path, out)
        return out
    if path.is_dir():
        if not list(path.glob("*.safetensors")):
            raise ModelNotFoundError(
                f"folder {path} holds no *.safetensors weights (pickled .bin checkpoints are not loaded)"
            )
        return path
    if path.exists() or model.startswith((".", "/", "~")) or "/" not in model:
        listing = ", ".join(sorted(names))
        raise ModelNotFoundError(
            f"no model named {model!r}: not a catalog name ({listing}), nor a folder, nor a .gguf file"
        )
    return _hub_snapshot(model)


def _hub_snapshot(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
        )
    except Exception as exc:  # offline machines, unknown ids, gated repos: all end here
        raise ModelNotFoundError(
            f"could not get {repo_id!r} from the Hugging Face hub ({type(exc).__name__}); "
            "use a catalog name (see `qslm models`) or a local folder"
        ) from exc
    return Path(folder)


def load(
    model: str | None = None,
    *,
    quant: str = "none",
    device: str = "auto",
    dtype: str | None = None,
    group_size: int = 128,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> LoadedModel:
    """Load a model by catalog name, folder, GGUF file or hub id, and quantize it as asked.

    ``sim-*``/``rtn-*`` round the decoder weights in place (full speed, same numerics);
    ``bnb-*`` loads real bitsandbytes modules. The unquantized weights stay on disk only.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from orchestrator import catalog

    started = time.perf_counter()
    name = model or catalog.DEFAULT_MODEL
    spec = parse_quant(quant, group_size=group_size)
    dev = pick_device(device)
    check_device_supports(spec, dev)
    folder = resolve_source(name, progress=progress)
    torch_dtype = _dtype(dtype, dev)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if spec.kind == "bnb":
        kwargs["quantization_config"] = bnb_config(spec, compute_dtype=torch_dtype)
        kwargs["device_map"] = dev
    try:
        hf_model: Any = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        tokenizer: Any = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"could not load a causal language model from {folder}: {exc}") from exc
    if spec.kind != "bnb":
        hf_model.to(dev)
    hf_model.eval()
    report = simulate_quantization_(hf_model, spec) if spec.kind == "sim" else None
    seconds = time.perf_counter() - started
    log.info("model_loaded", model=name, quant=spec.name, device=dev, seconds=round(seconds, 2))
    return LoadedModel(hf_model, tokenizer, name, folder, spec, dev, seconds, report)


def _dtype(dtype: str | None, device: str) -> Any:
    import torch

    table = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    if dtype is None:
        return torch.float32 if device == "cpu" else torch.bfloat16
    if dtype not in table:
        raise InputError(f"unknown dtype {dtype!r}; choose one of {', '.join(table)}")
    return table[dtype]
