"""The test fixtures themselves: the byte tokenizer round-trips and every tiny architecture runs."""

import pytest
import torch

from tests.tiny import ARCHS, byte_tokenizer, tiny_model


def test_byte_tokenizer_round_trips_text_with_newlines_and_unicode() -> None:
    tok = byte_tokenizer()
    text = "She walked 12 × 4 = 48 miles.\n\\[ 9 \\times 2 = 18 \\]"
    ids = tok(text).input_ids
    assert len(ids) == len(text.encode())
    assert tok.decode(ids) == text


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_model_gives_finite_logits_over_the_vocab(arch: str) -> None:
    model = tiny_model(arch)
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, model.config.vocab_size)
    assert torch.isfinite(logits).all()
