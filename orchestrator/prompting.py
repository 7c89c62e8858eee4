"""Turning a question into the prompt tokens a chat model expects."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InputError

DEFAULT_TEMPLATE = "{question}\nPlease reason step by step, and put your final answer within \\boxed{}."
MAX_QUESTION_CHARS = 8000


def check_question(question: str) -> str:
    """Strip a question and refuse an empty or oversized one with a clear message."""
    if not isinstance(question, str):
        raise InputError("the question must be text")
    text = question.strip()
    if not text:
        raise InputError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InputError(f"the question has {len(text)} characters; the limit is {MAX_QUESTION_CHARS}")
    return text


def build_prompt(
    tokenizer: Any, question: str, *, template: str = DEFAULT_TEMPLATE, system: str | None = None
) -> list[int]:
    """Token ids of the chat prompt for ``question``, ending where the assistant starts to write.

    Uses the tokenizer's chat template when it has one (instruct models), else a plain
    ``Question:/Answer:`` layout (base models).
    """
    user = template.replace("{question}", check_question(question))  # plain replacement: LaTeX braces stay
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": user})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):
            ids = ids["input_ids"]
        return [int(t) for t in ids]
    text = (system + "\n\n" if system else "") + f"Question: {user}\nAnswer:"
    return [int(t) for t in tokenizer(text).input_ids]
