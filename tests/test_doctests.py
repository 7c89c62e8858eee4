"""Every ``>>>`` example in the orchestrator and policies packages runs and holds."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import orchestrator
import policies

MODULES = sorted(
    m.name
    for package in (orchestrator, policies)
    for m in pkgutil.iter_modules(package.__path__, f"{package.__name__}.")
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
