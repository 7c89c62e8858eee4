"""Concurrent solves cap glibc's heap arenas, so that freed caches go back to one shared heap."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Eight threads allocate through malloc at once, then glibc reports its heaps (malloc_info's XML).
PROBE = textwrap.dedent(
    """
    import ctypes, re, sys, tempfile, threading
    if sys.argv[1] == "capped":
        from orchestrator.memory import cap_malloc_arenas
        assert cap_malloc_arenas()
    libc = ctypes.CDLL("libc.so.6")
    barrier = threading.Barrier(8)
    def work():
        barrier.wait()
        held = [bytearray(1 << 16) for _ in range(200)]
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile("r") as out:
        fp = ctypes.c_void_p(libc.fopen(out.name.encode(), b"w"))
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        print(len(re.findall(r"<heap nr=", out.read())))
    """
)


def _heaps(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator")
def test_capped_threads_share_two_heaps_where_they_would_take_one_each() -> None:
    assert _heaps("default") > 2  # glibc's own choice on this machine: a heap per busy thread
    assert _heaps("capped") <= 2


def test_the_users_own_setting_stands(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.memory import cap_malloc_arenas

    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    cap_malloc_arenas.cache_clear()
    try:
        assert cap_malloc_arenas() is False
    finally:
        cap_malloc_arenas.cache_clear()
