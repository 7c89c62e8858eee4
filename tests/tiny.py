"""Tiny random models built from configs, and a byte-level tokenizer: real code paths, no weights, no network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

ARCHS = ("llama", "qwen2", "gemma3")


def byte_tokenizer() -> Any:
    """A real fast tokenizer over bytes (256 tokens + specials), so decoding and newlines behave as usual."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    specials = ["<|pad|>", "<|eos|>", "<|bos|>"]
    for s in specials:
        vocab[s] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|pad|>", eos_token="<|eos|>", bos_token="<|bos|>")
    fast.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    return fast


def tiny_config(arch: str, vocab_size: int = 259, layers: int = 4) -> Any:
    """A config of the named architecture, small enough to run in milliseconds."""
    from transformers import Gemma3TextConfig, LlamaConfig, Qwen2Config

    common: dict[str, Any] = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=256,
        eos_token_id=257,
        bos_token_id=258,
        tie_word_embeddings=False,
    )
    if arch == "llama":
        return LlamaConfig(**common)
    if arch == "qwen2":
        return Qwen2Config(**common)
    if arch == "gemma3":
        return Gemma3TextConfig(**common, head_dim=16, sliding_window=64)
    raise ValueError(arch)


def tiny_model(arch: str, seed: int = 0, layers: int = 4) -> Any:
    """A random model of the named architecture, in fp32 and eval mode."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, layers=layers), dtype=torch.float32)
    # Random init leaves logits nearly flat; sharpen them so greedy choices are not knife-edge ties.
    with torch.no_grad():
        model.lm_head.weight.mul_(20.0)
    return model.eval()


def save_tiny(arch: str, folder: Path, seed: int = 0, layers: int = 4) -> Path:
    """Write a tiny model and the byte tokenizer as a safetensors folder (a stand-in for a cached catalog model)."""
    model = tiny_model(arch, seed=seed, layers=layers)
    model.save_pretrained(folder, safe_serialization=True)
    byte_tokenizer().save_pretrained(folder)
    return folder
