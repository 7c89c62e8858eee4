"""``qslm profile``: which decoder layers does quantization hurt, and which are worth restoring?

Compares the reference model with its simulated-quantized self on calibration text, teacher-forced:

- per decoder layer, ``quant_kl`` = KL(reference || model with only that layer quantized) and
  ``restore_kl`` = KL(reference || quantized model with only that layer restored);
- for the fully quantized model, per key-token class of the *target* token (numbers, operators,
  connectives, step markers, other): mean KL and top-1 flip rate, with token counts.

One model object does all of it: the reference is loaded once, and layers are rounded and put back one at
a time (``sim-*``/``rtn-*`` only; the reference weights of a layer are read back from the model's
safetensors folder, so no second copy of the model is held). Afterwards the weights are bit-identical to
the ones it started from. Layers before the one being varied compute what the last full pass computed, so
their outputs are cached and each per-layer pass starts at that layer.

KL is computed over the reference's ``top_k`` most likely tokens plus one bucket for the rest (exact when
``top_k`` covers the vocabulary): a tight lower bound that keeps the stored reference small.

The profile file extends the format :func:`orchestrator.layer_choice.read_profile` reads, so a policy can name
it (``layers: profile:PATH``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import torch
from torch import Tensor, nn

from orchestrator.confidence import classify_tokens
from orchestrator.errors import InputError, QuantizationError
from orchestrator.layer_choice import LayerProfile, LayerScore
from orchestrator.quantize import decoder_layers, parse_quant, simulate_quantization_

if TYPE_CHECKING:
    from orchestrator.loading import LoadedModel

log = structlog.get_logger(__name__)

from orchestrator.profile_cli import DEFAULT_BATCH, DEFAULT_LIMIT, DEFAULT_MAX_TOKENS, DEFAULT_TOP_K  # noqa: E402

LOGIT_CHUNK = 256  # positions pushed through lm_head at once (bounds the vocab-sized buffers)
CLASSES = ("number", "operator", "connective", "step_marker", "other")


# ------------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class LayerStats:
    """One decoder layer's sensitivity."""

    index: int
    quant_kl: float  # only this layer quantized (higher: quantizing it hurts more)
    restore_kl: float  # everything quantized but this layer (lower: restoring it helps more)
    quant_top1: float  # top-1 agreement with the reference, only this layer quantized
    restore_top1: float  # top-1 agreement, only this layer restored


@dataclass(frozen=True)
class ClassStats:
    """Divergence of the fully quantized model on target tokens of one key-token class."""

    tokens: int
    kl: float  # mean KL over these tokens
    top1_flip_rate: float  # share of these tokens whose top-1 prediction differs from the reference's


@dataclass
class Profile:
    """A layer-sensitivity profile; :meth:`write_profile` writes what ``read_profile`` reads, plus more."""

    model: str
    quant: str
    group_size: int
    n_texts: int
    n_tokens: int  # predicted (target) tokens over all texts
    max_tokens: int
    top_k: int  # 0: exact KL over the whole vocabulary
    full_kl: float  # every layer quantized
    top1_agreement: float  # every layer quantized
    layers: list[LayerStats] = field(default_factory=list)
    classes: dict[str, ClassStats] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_profile(self, path: str | Path) -> Path:
        """Write the JSON profile file; returns its path."""
        from orchestrator.files import write_json

        return write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        layers = [LayerStats(**entry) for entry in data.get("layers", [])]
        classes = {k: ClassStats(**v) for k, v in data.get("classes", {}).items()}
        fields = {k: v for k, v in data.items() if k not in ("layers", "classes")}
        return cls(**fields, layers=layers, classes=classes)

    def layer_profile(self) -> LayerProfile:
        """The part a layer choice needs."""
        scores = tuple(LayerScore(s.index, s.restore_kl, s.quant_kl) for s in self.layers)
        return LayerProfile(self.model, self.quant, scores)

    def top_layers(self, k: int = 4) -> list[int]:
        """The ``k`` layers most worth restoring (lowest ``restore_kl`` first)."""
        return self.layer_profile().ranked()[:k]


def load_profile(path: str | Path) -> Profile:
    """Read a file written by :meth:`Profile.write_profile`."""
    try:
        return Profile.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path} is not a profile written by `qslm profile`: {exc}") from exc


# ------------------------------------------------------------------------------------------- calibration


def calibration_texts(path: str | Path | None = None, *, limit: int = DEFAULT_LIMIT, seed: int = 0) -> list[str]:
    """Texts to profile on: question + worked answer from a GSM8K-format JSONL file (``<<...>>``
    calculator notes removed; a ``text`` field is taken as is), or the synthetic suite when no path."""
    if limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}")
    if path is None:
        from orchestrator.synthetic import generate_problems

        return [f"{p.question}\n{p.solution}\n#### {p.answer}" for p in generate_problems(limit, seed=seed)]
    texts: list[str] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read calibration data {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{n} is not JSON: {exc}") from exc
        if isinstance(row, dict) and isinstance(row.get("question"), str):
            answer = re.sub(r"<<[^>]*>>", "", str(row.get("answer", "")))
            texts.append(f"{row['question']}\n{answer}".strip())
        elif isinstance(row, dict) and isinstance(row.get("text"), str):
            texts.append(row["text"])
        else:
            raise InputError(f"{path}:{n} needs a 'question' (and 'answer') or a 'text' field")
        if len(texts) >= limit:
            break
    if not texts:
        raise InputError(f"no calibration texts in {path}")
    return texts


@dataclass
class _Batch:
    input_ids: Tensor  # (B, T), right-padded
    attention_mask: Tensor  # (B, T)
    predict: Tensor  # (B, T) bool: positions whose next token is a real target


@dataclass
class _Divergence:
    kl: Tensor  # (N,) float64 per target token
    agree: Tensor  # (N,) bool: top-1 equals the reference's

    @property
    def mean_kl(self) -> float:
        return float(self.kl.mean()) if self.kl.numel() else 0.0

    @property
    def top1(self) -> float:
        return float(self.agree.float().mean()) if self.agree.numel() else 1.0


@dataclass
class _LayerPass:
    """What a finished single-layer pass leaves: all a :class:`LayerStats` needs of it."""

    mean_kl: float
    top1: float


class _Checkpoint:
    """The finished single-layer passes of a profile, one JSON line each, so an interrupted run resumes.

    The first line names the settings; a file written under other settings (model, quantization,
    texts, budgets) is started over. A line torn by a kill is dropped.
    """

    def __init__(self, path: Path | None, settings: dict[str, Any]) -> None:
        self.path = path
        self.done: dict[tuple[str, int], _LayerPass] = {}
        if path is None:
            return
        header = json.dumps({"settings": settings}, sort_keys=True)
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        if lines and lines[0] == header:
            for line in lines[1:]:
                try:
                    rec = json.loads(line)
                    self.done[(str(rec["pass"]), int(rec["layer"]))] = _LayerPass(float(rec["kl"]), float(rec["top1"]))
                except (ValueError, KeyError, TypeError):
                    break
        from orchestrator.files import write_text

        kept = [_line(kind, layer, got) for (kind, layer), got in self.done.items()]
        write_text(path, header + "\n" + "".join(kept))  # the torn line, if any, dropped
        if self.done:
            log.info("profile_resumed", checkpoint=str(path), passes_done=len(self.done))

    def get(self, kind: str, layer: int) -> _LayerPass | None:
        return self.done.get((kind, layer))

    def add(self, kind: str, layer: int, div: _Divergence) -> _LayerPass:
        got = _LayerPass(div.mean_kl, div.top1)
        self.done[(kind, layer)] = got
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(_line(kind, layer, got))
        return got

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _line(kind: str, layer: int, got: _LayerPass) -> str:
    """One finished pass as the checkpoint keeps it."""
    return json.dumps({"pass": kind, "layer": layer, "kl": got.mean_kl, "top1": got.top1}) + "\n"


class _Calibration:
    """Tokenized calibration batches, the reference's stored distributions, and the divergence of a model."""

    def __init__(self, model: Any, tokenizer: Any, texts: Sequence[str], *, max_tokens: int, batch_size: int,
                 top_k: int) -> None:  # fmt: skip
        if max_tokens < 2:
            raise InputError(f"max_tokens must be at least 2, got {max_tokens}")
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.device = next(model.parameters()).device
        ids = [list(tokenizer(t)["input_ids"])[:max_tokens] for t in texts]
        ids = [x for x in ids if len(x) >= 2]
        if not ids:
            raise InputError("no calibration text is at least two tokens long")
        self.n_texts = len(ids)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.batches: list[_Batch] = []
        for start in range(0, len(ids), batch_size):
            group = ids[start : start + batch_size]
            width = max(len(x) for x in group)
            input_ids = torch.full((len(group), width), int(pad), dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for r, x in enumerate(group):
                input_ids[r, : len(x)] = torch.tensor(x)
                mask[r, : len(x)] = 1
            predict = torch.zeros_like(mask, dtype=torch.bool)
            predict[:, :-1] = mask[:, 1:] == 1  # position t predicts token t + 1
            self.batches.append(_Batch(input_ids.to(self.device), mask.to(self.device), predict.to(self.device)))
        classes: list[str] = []
        for x in ids:
            pieces = [tokenizer.decode([t]) for t in x]
            classes.extend(classify_tokens(pieces)[1:])  # the classes of the target tokens
        self.classes = classes
        self.n_tokens = len(classes)
        vocab = int(model.get_output_embeddings().weight.shape[0])
        self.top_k = 0 if top_k <= 0 or top_k >= vocab else top_k
        self._ref_logp: list[Tensor] = []  # per chunk: (n, k) fp32 log-probs, descending
        self._ref_idx: list[Tensor | None] = []  # per chunk: (n, k) token ids; None when exact (whole vocab)
        self._ref_rest: list[Tensor] = []  # per chunk: (n,) float64 log of the mass outside the top k
        self.layer_inputs: list[list[Tensor]] = []  # [layer][batch] hidden states entering the layer

    # -- forward passes

    @torch.no_grad()
    def _hidden(self, b: int, start: int, capture: bool) -> Tensor:
        """Final hidden states of one batch; layers before ``start`` are skipped (their cached output
        enters layer ``start``). With ``capture``, the input of every layer is cached."""
        blocks = decoder_layers(self.model)
        batch = self.batches[b]
        saved: dict[int, nn.Module] = {}
        hooks = []
        if capture:
            for i, block in enumerate(blocks):
                hooks.append(block.register_forward_pre_hook(_capturer(self.layer_inputs, i, b), with_kwargs=True))
        try:
            for i in range(start):
                saved[i] = blocks[i]
                cached = self.layer_inputs[start][b] if i == start - 1 else None
                blocks[i] = _Skip(saved[i], cached)
            out = self.model.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
        finally:
            for i, module in saved.items():
                blocks[i] = module
            for h in hooks:
                h.remove()
        hidden: Tensor = out.last_hidden_state[batch.predict]
        return hidden

    def _logprobs(self, hidden: Tensor) -> Iterator[Tensor]:
        head = self.model.get_output_embeddings()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        for s in range(0, hidden.shape[0], LOGIT_CHUNK):
            logits = head(hidden[s : s + LOGIT_CHUNK]).float()
            if cap:
                logits = torch.tanh(logits / cap) * cap
            yield torch.log_softmax(logits, dim=-1)

    @torch.no_grad()
    def record_reference(self) -> None:
        """Run the model as it is now (the reference), store its distributions and every layer's inputs."""
        n_layers = len(decoder_layers(self.model))
        self.layer_inputs = [[] for _ in range(n_layers)]
        self._ref_logp, self._ref_idx, self._ref_rest = [], [], []
        for b in range(len(self.batches)):
            for logp in self._logprobs(self._hidden(b, 0, capture=True)):
                if self.top_k:
                    top, idx = logp.topk(self.top_k, dim=-1)
                    self._ref_logp.append(top.contiguous())
                    self._ref_idx.append(idx)
                    self._ref_rest.append(_outside(logp, idx))
                else:
                    self._ref_logp.append(logp)
                    self._ref_idx.append(None)
                    self._ref_rest.append(torch.full(logp.shape[:1], -math.inf, dtype=torch.float64))

    @torch.no_grad()
    def divergence(self, *, start: int = 0, capture: bool = False) -> _Divergence:
        """KL(reference || model as it is now) and top-1 agreement, per target token.

        ``start`` > 0 reuses the cached inputs of layer ``start`` (valid when layers before it are as they
        were in the last ``capture`` pass); ``capture`` refreshes that cache from this pass.
        """
        kls: list[Tensor] = []
        agrees: list[Tensor] = []
        if capture:
            self.layer_inputs = [[] for _ in range(len(decoder_layers(self.model)))]
        chunk = 0
        for b in range(len(self.batches)):
            for logq in self._logprobs(self._hidden(b, start, capture)):
                ref, idx, rest = self._ref_logp[chunk], self._ref_idx[chunk], self._ref_rest[chunk]
                chunk += 1
                q_top = logq if idx is None else logq.gather(-1, idx)
                kl = (ref.double().exp() * (ref.double() - q_top.double())).sum(-1)
                if idx is not None:  # the bucket of everything outside the reference's top k
                    q_rest = _outside(logq, idx)
                    kl = kl + torch.where(rest > -math.inf, rest.exp() * (rest - q_rest), torch.zeros_like(rest))
                    ref_best = idx[:, 0]
                else:
                    ref_best = ref.argmax(-1)
                kls.append(kl.cpu())
                agrees.append((logq.argmax(-1) == ref_best).cpu())
        return _Divergence(torch.cat(kls), torch.cat(agrees))


def _outside(logp: Tensor, idx: Tensor) -> Tensor:
    """Log of the probability mass outside the tokens ``idx`` (float64), summed directly so it never
    comes out as log(0) from rounding when the tail is tiny."""
    return logp.scatter(-1, idx, -math.inf).logsumexp(-1).double()


class _Skip(nn.Module):
    """Stands in for a decoder layer that a pass skips: hands on its input, or the cached output."""

    def __init__(self, original: nn.Module, cached: Tensor | None) -> None:
        super().__init__()
        self.cached = cached
        for attr in ("attention_type", "layer_idx"):
            if hasattr(original, attr):
                setattr(self, attr, getattr(original, attr))

    def forward(self, hidden_states: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        return hidden_states if self.cached is None else self.cached


def _capturer(store: list[list[Tensor]], layer: int, batch: int) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        rows = store[layer]
        if len(rows) == batch:
            rows.append(hidden.detach())
        else:
            rows[batch] = hidden.detach()

    return hook


# ----------------------------------------------------------------------------------------- layer weights


def _linear_weights(block: nn.Module) -> dict[str, Tensor]:
    """The weights ``simulate_quantization_`` rounds: those of the layer's ``nn.Linear`` modules."""
    return {f"{name}.weight": m.weight for name, m in block.named_modules() if isinstance(m, nn.Linear)}


class _References:
    """Reads one decoder layer's reference weights from the safetensors folder (one layer in memory)."""

    def __init__(self, folder: Path, n_layers: int) -> None:
        from orchestrator.precision import _reference_files  # one reader of layer slices for the package

        self.files = _reference_files(Path(folder), tuple(range(n_layers)))

    def read(self, layer: int) -> dict[str, Tensor]:
        from orchestrator.precision import _read_layer

        return _read_layer(self.files[layer], layer)


@torch.no_grad()
def _put(block: nn.Module, tensors: dict[str, Tensor], layer: int, *, check: bool = False) -> None:
    """Copy ``tensors`` into the layer's Linear weights; with ``check``, first insist they are equal."""
    for key, weight in _linear_weights(block).items():
        if key not in tensors:
            raise InputError(f"the reference folder has no tensor {key!r} for layer {layer}")
        source = tensors[key].to(device=weight.device, dtype=weight.dtype)
        if check and not torch.equal(source, weight.data):
            raise InputError(
                f"layer {layer} {key} differs from the reference folder: profile needs the unquantized model "
                "loaded from that folder (load it with quant='none')"
            )
        weight.data.copy_(source)


# ------------------------------------------------------------------------------------------------ profile


def run_profile(
    model: str | LoadedModel,
    *,
    quant: str,
    texts: Sequence[str] | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = DEFAULT_BATCH,
    top_k: int = DEFAULT_TOP_K,
    group_size: int = 128,
    device: str = "auto",
    dtype: str | None = None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
) -> Profile:
    """Profile ``model`` (a name to load, or an unquantized :class:`LoadedModel`) under ``quant``.

    ``texts`` defaults to the synthetic suite (:data:`DEFAULT_LIMIT` problems). The model's weights are
    bit-identical afterwards, also when it stops with an exception. With a ``checkpoint`` file every
    finished layer pass is kept there, a rerun with the same settings skips them (a profile of a
    1.5B model takes hours on a small CPU), and the file is removed once the profile is done.
    """
    from tqdm import tqdm

    from orchestrator.loading import LoadedModel, load

    spec = parse_quant(quant, group_size=group_size)
    if spec.kind == "bnb":
        raise QuantizationError(
            f"profile uses simulated quantization, which rounds layers one at a time in place; "
            f"{spec.name} modules cannot be put back. Use sim-{spec.name[4:]} (same numerics)."
        )
    if spec.kind == "none":
        raise QuantizationError("profile compares the reference with a quantization: name one, e.g. sim-nf4")
    started = time.perf_counter()
    loaded = model if isinstance(model, LoadedModel) else load(model, quant="none", device=device, dtype=dtype,
                                                                 progress=progress)  # fmt: skip
    if loaded.quant.kind != "none":
        raise InputError(f"profile needs the unquantized model, got one loaded as {loaded.quant.name}")
    if loaded.reference is None:
        raise InputError("profile needs the model's reference safetensors folder (LoadedModel.reference)")
    hf = loaded.model
    blocks = decoder_layers(hf)
    n_layers = len(blocks)
    refs = _References(loaded.reference, n_layers)
    text_list = list(texts) if texts is not None else calibration_texts()
    calib = _Calibration(hf, loaded.tokenizer, text_list, max_tokens=max_tokens, batch_size=batch_size, top_k=top_k)
    settings = {
        "model": loaded.name, "quant": spec.name, "group_size": spec.group_size, "max_tokens": max_tokens,
        "top_k": top_k, "batch_size": batch_size, "dtype": str(next(hf.parameters()).dtype),
        "texts": hashlib.sha256("\x00".join(text_list).encode("utf-8")).hexdigest(),
    }  # fmt: skip
    ckpt = _Checkpoint(Path(checkpoint) if checkpoint is not None else None, settings)
    bar = tqdm(total=2 * n_layers + 2, desc="profile", unit="pass", file=sys.stderr, disable=not progress)
    quant_stats: list[_LayerPass] = []
    restore_stats: list[_LayerPass] = []
    try:
        for i in range(n_layers):  # the reference must be what the folder holds, layer by layer
            _put(blocks[i], refs.read(i), i, check=True)
        calib.record_reference()
        bar.update()
        for i in range(n_layers):
            bar.set_postfix_str(f"quantize layer {i}")
            got = ckpt.get("quantize", i)
            if got is None:
                simulate_quantization_(hf, spec, layers=[i])
                got = ckpt.add("quantize", i, calib.divergence(start=i))
                _put(blocks[i], refs.read(i), i)
            quant_stats.append(got)
            bar.update()
        simulate_quantization_(hf, spec)
        full = calib.divergence(capture=True)
        bar.update()
        for i in range(n_layers):
            bar.set_postfix_str(f"restore layer {i}")
            got = ckpt.get("restore", i)
            if got is None:
                rounded = {k: w.detach().clone() for k, w in _linear_weights(blocks[i]).items()}
                _put(blocks[i], refs.read(i), i)
                got = ckpt.add("restore", i, calib.divergence(start=i))
                _put(blocks[i], rounded, i)
            restore_stats.append(got)
            bar.update()
    finally:
        bar.close()
        calib.layer_inputs = []
        for i in range(n_layers):
            _put(blocks[i], refs.read(i), i)
    layers = [
        LayerStats(i, q.mean_kl, r.mean_kl, q.top1, r.top1)
        for i, (q, r) in enumerate(zip(quant_stats, restore_stats, strict=True))
    ]
    result = Profile(
        model=loaded.name, quant=spec.name, group_size=spec.group_size, n_texts=calib.n_texts,
        n_tokens=calib.n_tokens, max_tokens=max_tokens, top_k=calib.top_k, full_kl=full.mean_kl,
        top1_agreement=full.top1, layers=layers, classes=_per_class(calib.classes, full),
        seconds=round(time.perf_counter() - started, 2),
    )  # fmt: skip
    ckpt.remove()
    log.info("profile_done", model=result.model, quant=result.quant, seconds=result.seconds,
             full_kl=round(result.full_kl, 5), top_layers=result.top_layers())  # fmt: skip
    return result


def _per_class(classes: Sequence[str], div: _Divergence) -> dict[str, ClassStats]:
    out: dict[str, ClassStats] = {}
    for name in CLASSES:
        rows = torch.tensor([c == name for c in classes], dtype=torch.bool)
        n = int(rows.sum())
        kl = float(div.kl[rows].mean()) if n else 0.0
        flips = float((~div.agree[rows]).float().mean()) if n else 0.0
        out[name] = ClassStats(n, kl, flips)
    return out


# ---------------------------------------------------------------------------------------------------- plot
