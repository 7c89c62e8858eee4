"""Writing the files a command produces: parent folders made, UTF-8, a clear error instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` (folders created); an unwritable path is an InputError naming it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc}") from exc
    return path


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON with a final newline (see :func:`write_text`)."""
    return write_text(path, json.dumps(data, indent=1) + "\n")
