"""The one module that loads models: catalog names, Hugging Face ids, local folders and GGUF files.

Everything else receives a loaded model and tokenizer; heavy imports happen inside functions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from orchestrator.errors import CatalogError


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
