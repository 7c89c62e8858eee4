"""``qslm check "step text"``: the arithmetic checker on the command line.

``orchestrator/cli.py`` owns the ``qslm`` command; it wires this subcommand with
``add_check_arguments(parser)`` and ``run_check(args)``. Exit status: 0 when no claim is
wrong, 1 when one is, 2 on bad input (one line on stderr, never a traceback).
``python -m verifiers.cli "2 + 2 = 5"`` runs it without the rest of the tool.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from verifiers.arithmetic import MAX_INPUT_CHARS, check_step
from verifiers.verdict import Verdict

EXIT_OK, EXIT_WRONG, EXIT_BAD_INPUT = 0, 1, 2
_MAX_STDIN_CHARS = MAX_INPUT_CHARS  # read no more than check_step would look at


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``check`` subcommand's arguments to ``parser``."""
    parser.add_argument("text", help='the step to check; "-" reads it from standard input')
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")


def _table(verdict: Verdict, out: TextIO) -> None:
    rows = [("#", "verdict", "claim", "expected", "reason")]
    for i, c in enumerate(verdict.claims, 1):
        rows.append((str(i), c.status, f"{c.expression} = {c.stated}", c.expected or "", c.reason))
    widths = [min(max(len(r[k]) for r in rows), 60) for k in range(4)]
    for row in rows:
        cells = [row[k][: widths[k]].ljust(widths[k]) for k in range(4)]
        out.write("  ".join([*cells, row[4]]).rstrip() + "\n")
    out.write(f"step: {verdict.status}")
    out.write(f" ({verdict.reason})\n" if verdict.reason and verdict.status == "unknown" else "\n")
    if verdict.corrected_text is not None:
        out.write(f"corrected: {verdict.corrected_text}\n")


def run_check(args: argparse.Namespace) -> int:
    """Check ``args.text`` (or stdin for "-"), print a table or JSON, return the exit status."""
    try:
        text = args.text
        if not isinstance(text, str):
            raise ValueError("the step text must be a string")
        if text == "-":
            text = sys.stdin.read(_MAX_STDIN_CHARS + 1)
        if not text.strip():
            raise ValueError("the step text is empty")
        verdict = check_step(text)
        if getattr(args, "json", False):
            sys.stdout.write(json.dumps(verdict.to_dict(), ensure_ascii=False, indent=2) + "\n")
        else:
            _table(verdict, sys.stdout)
    except (ValueError, OSError, UnicodeError) as exc:
        sys.stderr.write(f"qslm check: error: {exc}\n")
        return EXIT_BAD_INPUT
    except Exception as exc:  # the CLI edge: a message, never a traceback
        sys.stderr.write(f"qslm check: error: {type(exc).__name__}: {exc}\n")
        return EXIT_BAD_INPUT
    return EXIT_WRONG if verdict.status == "wrong" else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m verifiers.cli TEXT [--json]``."""
    parser = argparse.ArgumentParser(prog="qslm check", description="Check the arithmetic of one step.")
    add_check_arguments(parser)
    return run_check(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
