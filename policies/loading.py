"""Reading policies from YAML: built-in names, user directories, paths, ``extends`` and error messages.

A name is looked up as ``NAME.yaml`` in each of ``search_dirs`` first, then among the built-in files
beside this module, so a user's directory registers policies exactly as the built-ins are registered
(and may shadow one). A YAML file may say ``extends: BASE`` (a name, or a path relative to the file):
the file is deep-merged onto the base (mappings merge key by key; lists and scalars replace).
Every validation problem becomes a :class:`~orchestrator.errors.PolicyError` naming the dotted key::

    policy 'x.yaml': resample.n_candidates: Input should be greater than or equal to 1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.errors import PolicyError
from policies.schema import Policy

BUILTIN_DIR = Path(__file__).resolve().parent
SUFFIXES = (".yaml", ".yml")
MAX_EXTENDS_DEPTH = 8

PathLike = str | Path


def list_policies(search_dirs: Sequence[PathLike] = ()) -> list[str]:
    """Names loadable by :func:`load_policy`: the built-ins plus any ``*.yaml`` in ``search_dirs``.

    >>> {"arithmetic", "default", "plain"} <= set(list_policies())
    True
    """
    names: set[str] = set()
    for directory in (*map(Path, search_dirs), BUILTIN_DIR):
        if directory.is_dir():
            names.update(p.stem for p in directory.iterdir() if p.suffix in SUFFIXES and p.is_file())
    return sorted(names)


def load_policy(name_or_path: PathLike | Policy, search_dirs: Sequence[PathLike] = ()) -> Policy:
    """A policy by built-in or user name (``"arithmetic"``) or by YAML path; a Policy passes through.

    Raises PolicyError for an unknown name, a missing or malformed file, or an invalid value.

    >>> load_policy("tutoring").trace.keep_all_verdicts
    True
    """
    if isinstance(name_or_path, Policy):
        return name_or_path
    path = _find(name_or_path, search_dirs)
    return _load_file(path, label=str(name_or_path), search_dirs=search_dirs, seen=())


def policy_from_dict(
    data: Mapping[str, Any], *, source: str = "inline", search_dirs: Sequence[PathLike] = ()
) -> Policy:
    """Validate an inline policy (for the server and the CLI), honouring ``extends``.

    >>> policy_from_dict({"extends": "default", "resample": {"n_candidates": 8}}).resample.n_candidates
    8
    """
    return _from_mapping(dict(data), label=source, base_dir=None, search_dirs=search_dirs, seen=())


def dump_policy(policy: Policy) -> str:
    """YAML text of ``policy`` with every key, loadable again by :func:`load_policy`."""
    return yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def format_validation_error(error: ValidationError, label: str) -> str:
    """One line per problem, each naming the dotted key path: ``policy 'x': a.b[0]: message``."""
    lines = []
    for item in error.errors():
        key = ""
        for part in item["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{key or '<policy>'}: {message}")
    return f"policy {label!r}: " + "; ".join(lines)


def _is_path(value: PathLike) -> bool:
    text = str(value)
    return isinstance(value, Path) or "/" in text or "\\" in text or text.endswith(SUFFIXES)


def _find(name_or_path: PathLike, search_dirs: Sequence[PathLike], base_dir: Path | None = None) -> Path:
    if _is_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if path.is_absolute():
            candidates = [path]
        elif base_dir is not None:  # extends: relative to the extending file
            candidates = [base_dir / path]
        else:  # relative to the working directory, then to each search directory
            candidates = [path, *(Path(d) / path for d in search_dirs)]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise PolicyError(f"policy file not found: {str(name_or_path)!r}")
    name = str(name_or_path)
    for directory in (*map(Path, search_dirs), BUILTIN_DIR):
        for suffix in SUFFIXES:
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    raise PolicyError(f"unknown policy {name!r}; known: {', '.join(list_policies(search_dirs))} (or give a YAML path)")


def _load_file(path: Path, *, label: str, search_dirs: Sequence[PathLike], seen: tuple[Path, ...]) -> Policy:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"policy {label!r}: cannot read {str(path)!r}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"policy {label!r}: invalid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"policy {label!r}: expected a mapping at the top level, got {type(data).__name__}")
    data.setdefault("name", path.stem)
    return _from_mapping(data, label=label, base_dir=path.parent, search_dirs=search_dirs, seen=(*seen, path.resolve()))


def _from_mapping(
    data: dict[str, Any],
    *,
    label: str,
    base_dir: Path | None,
    search_dirs: Sequence[PathLike],
    seen: tuple[Path, ...],
) -> Policy:
    base_ref = data.pop("extends", None)
    if base_ref is not None:
        if not isinstance(base_ref, str) or not base_ref:
            raise PolicyError(f"policy {label!r}: extends: expected a policy name or path")
        if len(seen) > MAX_EXTENDS_DEPTH:
            raise PolicyError(f"policy {label!r}: extends: chain deeper than {MAX_EXTENDS_DEPTH}")
        base_path = _find(base_ref, search_dirs, base_dir)
        if base_path.resolve() in seen:
            raise PolicyError(f"policy {label!r}: extends: cycle through {base_ref!r}")
        base = _load_file(base_path, label=base_ref, search_dirs=search_dirs, seen=seen)
        data = _deep_merge(base.model_dump(), data)
    if base_dir is not None:
        _anchor_profile(data, base_dir, label)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, label)) from None


def _anchor_profile(data: dict[str, Any], base_dir: Path, label: str) -> None:
    """A relative ``profile:PATH`` in a policy file means beside that file, when a file is there."""
    escalation = data.get("escalation")
    if not isinstance(escalation, dict):
        return
    layers = escalation.get("layers")
    if not isinstance(layers, str) or not layers.startswith("profile:"):
        return
    path = Path(layers.removeprefix("profile:")).expanduser()
    if not path.is_absolute() and (base_dir / path).is_file():
        escalation["layers"] = f"profile:{(base_dir / path).resolve()}"
    elif not path.is_file():
        raise PolicyError(
            f"policy {label!r}: escalation.layers names the profile {str(path)!r}, which is not there (looked "
            f"beside the policy, in {str(base_dir)!r}, and in the working directory)"
        )


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` onto ``base``: mappings merge recursively, everything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
