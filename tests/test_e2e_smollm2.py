"""End to end on the catalog's smollm2-135m (real weights, fetched and converted on first use)."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def smol():  # type: ignore[no-untyped-def]
    from orchestrator.loading import load

    return load("smollm2-135m", quant="none", device="cpu")


def test_numbered_items_are_steps_and_the_text_equals_hf_generate(smol) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.generation import StepGenerator
    from orchestrator.plain import generate_plain
    from orchestrator.prompting import build_prompt

    gen = StepGenerator(smol.model, smol.tokenizer, boundary="numbered_item")
    question = "Tom has 3 bags with 4 apples each. He eats 2. How many apples are left? Answer in numbered steps."
    prompt = build_prompt(smol.tokenizer, question)
    result = generate_plain(gen, [prompt], max_steps=4, max_tokens=120)[0]
    # Rolled-back lookahead tokens leave holes in the cache; the text must still be greedy's own.
    full = smol.model.generate(torch.tensor([prompt]), max_new_tokens=result.tokens, do_sample=False)
    assert smol.tokenizer.decode(full[0, len(prompt) :]) == result.text
    numbered = [s.text for s in result.steps if s.text[:1].isdigit()]
    assert len(numbered) >= 3
    for k, text in enumerate(numbered[:3]):
        assert text.startswith(f"{k + 1}.")
        assert text.count("\n") <= 2  # one item per step, not the whole list
