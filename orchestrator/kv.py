"""A batched KV cache with per-row validity: the bookkeeping behind step-wise generation.

Rows of one batch advance in lockstep, one token per forward. A row that is waiting (its
step already ended, or it is padding) is fed a pad token whose position is masked out, so
the cache holds *holes*. Holes cost attention work but never change a result: positions
are passed explicitly and masked positions receive zero weight. ``compact()`` squeezes
them out when they pile up.

The cache is a transformers ``DynamicCache`` built without a config, so every layer keeps
its full history (a sliding-window model still applies its window through the mask). That
keeps crop/select/gather simple tensor operations on ``layer.keys`` / ``layer.values``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class RowCache:
    """KV tensors of a batch, the validity mask of every position, and next-token logits per row."""

    cache: Any  # transformers DynamicCache
    mask: torch.Tensor  # (rows, length) long, 1 = a real token, 0 = pad or hole
    next_logits: torch.Tensor  # (rows, vocab) logits for each row's next token

    @property
    def rows(self) -> int:
        return int(self.mask.shape[0])

    @property
    def length(self) -> int:
        return int(self.mask.shape[1])

    def valid_counts(self) -> torch.Tensor:
        """Number of real tokens per row: the position id of each row's next token."""
        return self.mask.sum(dim=1)

    def _layers(self) -> list[Any]:
        return [layer for layer in self.cache.layers if getattr(layer, "is_initialized", False)]

    def clone(self) -> RowCache:
        """An independent copy, so proposals never disturb the accepted state."""
        return self.select(torch.arange(self.rows, device=self.mask.device))

    def select(self, rows: torch.Tensor) -> RowCache:
        """A new cache made of the given rows (repeats allowed: that is how candidates fork)."""
        from transformers import DynamicCache

        # All rows in order: share the KV tensors instead of copying them. Safe because nothing
        # here or in transformers' DynamicLayer writes into them in place (updates concatenate).
        same = rows.numel() == self.rows and bool((rows.cpu() == torch.arange(self.rows)).all())
        new = DynamicCache()
        new.layers = [copy.copy(layer) for layer in self.cache.layers]
        layer: Any
        if not same:
            for layer in new.layers:
                if getattr(layer, "is_initialized", False):
                    layer.keys = layer.keys.index_select(0, rows)
                    layer.values = layer.values.index_select(0, rows)
        return RowCache(new, self.mask.index_select(0, rows), self.next_logits.index_select(0, rows))

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions of every row."""
        for layer in self._layers():
            layer.keys = layer.keys[:, :, :length, :]
            layer.values = layer.values[:, :, :length, :]
        self.mask = self.mask[:, :length]

    def pad_right(self, length: int) -> None:
        """Append holes until the cache has ``length`` positions (to stack with a longer cache)."""
        extra = length - self.length
        if extra <= 0:
            return
        for layer in self._layers():
            shape = list(layer.keys.shape)
            shape[2] = extra
            layer.keys = torch.cat([layer.keys, layer.keys.new_zeros(shape)], dim=2)
            layer.values = torch.cat([layer.values, layer.values.new_zeros(shape)], dim=2)
        self.mask = torch.cat([self.mask, self.mask.new_zeros((self.rows, extra))], dim=1)

    def hole_fraction(self) -> float:
        total = self.mask.numel()
        return 0.0 if total == 0 else 1.0 - float(self.mask.sum()) / total

    def compact(self) -> None:
        """Move each row's real positions together (left-padded), dropping holes; results are unchanged."""
        counts = self.valid_counts()
        new_len = int(counts.max()) if self.rows else 0
        if new_len == self.length:
            return
        # For each row: indices of its real positions, right-aligned into new_len slots.
        order = torch.argsort(self.mask, dim=1, stable=True)  # holes first, then real positions in order
        index = order[:, self.length - new_len :]
        new_mask = self.mask.gather(1, index)
        for layer in self._layers():
            b, h, _, d = layer.keys.shape
            gather_idx = index[:, None, :, None].expand(b, h, new_len, d)
            layer.keys = layer.keys.gather(2, gather_idx)
            layer.values = layer.values.gather(2, gather_idx)
        self.mask = new_mask


def stack_rows(parts: list[RowCache]) -> RowCache:
    """Concatenate caches row-wise, padding the shorter ones on the right with holes."""
    from transformers import DynamicCache

    length = max(p.length for p in parts)
    for p in parts:
        p.pad_right(length)
    new = DynamicCache()
    new.layers = [copy.copy(layer) for layer in parts[0].cache.layers]
    layer: Any
    for idx, layer in enumerate(new.layers):
        if getattr(layer, "is_initialized", False):
            layer.keys = torch.cat([p.cache.layers[idx].keys for p in parts], dim=0)
            layer.values = torch.cat([p.cache.layers[idx].values for p in parts], dim=0)
    return RowCache(
        new,
        torch.cat([p.mask for p in parts], dim=0),
        torch.cat([p.next_logits for p in parts], dim=0),
    )
