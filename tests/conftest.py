"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _keep_logging_config() -> Iterator[None]:
    """A CLI ``main`` run in-process configures structlog for a terminal; later tests capture logs under
    the configuration they started with."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
