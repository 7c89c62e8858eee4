"""The narrow interface the graph drives: one question's step stream.

The graph never touches a model. It asks a :class:`StepStream` for candidate steps, tells it
which one to keep, and asks it to run a block with high-precision layers. The transformers
backend is :class:`GeneratorStream`; tests drive the graph with a scripted fake, and another
backend (llama.cpp) only has to implement these few methods.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from orchestrator.generation import Session, StepGenerator
from orchestrator.steps import Sampling, Step


@runtime_checkable
class StepStream(Protocol):
    """One question's generation state, as the graph sees it."""

    proposal_id: int  # increases with every propose(); a draft remembers the proposal it came from

    def sync(self, prompt_ids: Sequence[int], accepted: Sequence[str]) -> None:
        """Make the accepted prefix equal to prompt + these step texts (rebuilds after a resume)."""

    def propose(self, n: int, sampling: Sampling, prefix: Sequence[int] = ()) -> list[Step]:
        """``n`` candidates for the next step, generated as one batch (``prefix``: forced first tokens)."""

    def agreement(self, token_ids: Sequence[int]) -> int:
        """How many leading tokens of a draft the model, as it is now, would write greedily itself."""

    def accept(self, index: int) -> None:
        """Keep candidate ``index`` of the current proposal."""

    def accept_text(self, text: str, index: int | None) -> Step:
        """Keep ``text`` as the next step (an edit of candidate ``index``, or any text when None)."""

    def reject(self) -> None:
        """Drop the current proposal."""

    def escalated(self, layers: Sequence[int]) -> contextlib.AbstractContextManager[Any]:
        """Run a block with high-precision copies of ``layers`` swapped in."""

    def piece(self, token_id: int) -> str:
        """Text of one token."""

    @property
    def num_layers(self) -> int:
        """Decoder layers of the model (for choosing escalation layers)."""


class GeneratorStream:
    """A :class:`StepStream` over the transformers :class:`StepGenerator`, with optional layer copies."""

    def __init__(self, generator: StepGenerator, precision: Any | None = None) -> None:
        self.gen = generator
        self.precision = precision  # orchestrator.precision.LayerPrecision or None
        self.session: Session | None = None
        self._accepted: list[str] = []
        self._prompt: list[int] = []
        self.proposal_id = 0

    @property
    def num_layers(self) -> int:
        return int(self.gen.model.config.num_hidden_layers)

    def sync(self, prompt_ids: Sequence[int], accepted: Sequence[str]) -> None:
        if self.session is not None and self._prompt == list(prompt_ids) and self._accepted == list(accepted):
            return
        self.session = self.gen.start(list(prompt_ids))
        self._prompt = list(prompt_ids)
        self._accepted = []
        for text in accepted:
            self.gen.force_accept(self.session, text)
            self._accepted.append(text)

    def propose(self, n: int, sampling: Sampling, prefix: Sequence[int] = ()) -> list[Step]:
        assert self.session is not None, "sync() first"
        self.proposal_id += 1
        return self.gen.propose(self.session, n=n, sampling=sampling, prefix=prefix)[0]

    def agreement(self, token_ids: Sequence[int]) -> int:
        assert self.session is not None, "sync() first"
        return self.gen.greedy_agreement(self.session, token_ids)

    def accept(self, index: int) -> None:
        assert self.session is not None, "sync() first"
        self.gen.accept(self.session, index)
        self._accepted.append(self.session.accepted_steps[0][-1].text)

    def accept_text(self, text: str, index: int | None) -> Step:
        assert self.session is not None, "sync() first"
        if index is not None and self.session.pending is not None:
            step = self.gen.accept_text(self.session, text, candidate=index)
        else:
            step = self.gen.force_accept(self.session, text)
        self._accepted.append(text)
        return step

    def reject(self) -> None:
        if self.session is not None:
            self.gen.reject(self.session)

    @contextlib.contextmanager
    def escalated(self, layers: Sequence[int]) -> Iterator[None]:
        if self.precision is None:
            yield
            return
        with self.precision.escalated(layers):
            yield

    def piece(self, token_id: int) -> str:
        return self.gen.piece(token_id)
