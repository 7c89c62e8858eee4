"""Traces kept in SQLite, so they outlive the process: one row per solve, written before the answer is sent."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    id       TEXT PRIMARY KEY,
    created  REAL NOT NULL,
    question TEXT NOT NULL,
    answer   TEXT,
    policy   TEXT NOT NULL,
    model    TEXT NOT NULL,
    partial  INTEGER NOT NULL,
    data     TEXT NOT NULL          -- the trace as JSON (Trace.to_dict)
)
"""


class TraceStore:
    """A small, thread-safe table of traces (one connection, one lock, WAL journal).

    >>> store = TraceStore(":memory:")
    >>> store.put("t1", question="q", answer="4", policy="default", model="m", partial=False, trace={"nodes": []})
    >>> store.get("t1")["answer"], store.get("nope")
    ('4', None)
    """

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)

    def put(
        self,
        trace_id: str,
        *,
        question: str,
        answer: str | None,
        policy: str,
        model: str,
        partial: bool,
        trace: dict[str, Any],
    ) -> None:
        data = json.dumps(trace, ensure_ascii=True, allow_nan=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO traces VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (trace_id, time.time(), question, answer, policy, model, int(partial), data),
            )

    def get(self, trace_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, created, question, answer, policy, model, partial, data FROM traces WHERE id = ?",
                (trace_id,),
            ).fetchone()
        if row is None:
            return None
        return {
            "trace_id": row[0],
            "created": row[1],
            "question": row[2],
            "answer": row[3],
            "policy": row[4],
            "model": row[5],
            "partial": bool(row[6]),
            "trace": json.loads(row[7]),
        }

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM traces").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
