"""Every ``>>>`` example in the verifiers package runs and holds."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import verifiers

MODULES = sorted(m.name for m in pkgutil.iter_modules(verifiers.__path__, "verifiers."))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_functions_have_examples() -> None:
    for name in (
        "check_step",
        "extract_answer",
        "answers_match",
        "get_verifier",
        "run_verifier",
        "register_verifier",
        "parse_expression",
        "evaluate",
    ):
        doc = getattr(verifiers, name).__doc__ or ""
        assert ">>>" in doc, name
