"""Options of ``qslm serve`` and its entry point, kept apart from the app so ``qslm --help`` stays fast."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_QUEUE_SIZE = 16
DEFAULT_DB = Path(os.environ.get("XDG_DATA_HOME", "~/.local/share")).expanduser() / "qslm" / "traces.sqlite"


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (refused before the model loads)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``qslm serve``."""
    from orchestrator.catalog import DEFAULT_MODEL
    from orchestrator.server_models import Limits

    d = Limits()
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"catalog name, folder, .gguf or hub id ({DEFAULT_MODEL})"
    )
    parser.add_argument("--quant", default="none", metavar="QUANT", help="quantization, as for `qslm solve` (none)")
    parser.add_argument("--group-size", type=int, default=128, help="group size of rtn-* quantization (default 128)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU)")
    parser.add_argument("--policy", default="default", help="policy used when a request names none (default)")
    parser.add_argument(
        "--policy-dir", action="append", default=[], metavar="DIR", help="directory of policy YAML files (repeatable)"
    )
    parser.add_argument("--db", default=str(DEFAULT_DB), help=f"SQLite file of traces (default {DEFAULT_DB})")
    parser.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, help="solves that may wait (16)")
    parser.add_argument(
        "--workers", type=_positive, default=1, help="solves run at once, their steps generated as one batch (1)"
    )
    parser.add_argument("--max-question-chars", type=int, default=d.max_question_chars, help="question length limit")
    parser.add_argument("--max-steps", type=int, default=d.max_steps, help="limit on steps per solve")
    parser.add_argument("--max-step-tokens", type=int, default=d.max_step_tokens, help="limit on tokens per step")
    parser.add_argument("--max-tokens", type=int, default=d.max_tokens, help="limit on tokens per solve")
    parser.add_argument("--max-candidates", type=int, default=d.max_candidates, help="limit on re-sampled candidates")
    parser.add_argument("--deadline", type=float, default=d.default_deadline_s, help="default per-request deadline, s")
    parser.add_argument(
        "--max-deadline", type=float, default=d.max_deadline_s, help="longest deadline a request may ask"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def run_serve(args: argparse.Namespace) -> int:
    """Load the model once, then serve until interrupted."""
    import sys

    import uvicorn

    from orchestrator.api import Orchestrator
    from orchestrator.errors import QslmError
    from orchestrator.server import create_app
    from orchestrator.server_models import Limits
    from policies import load_policy

    limits = Limits(
        max_question_chars=args.max_question_chars,
        max_steps=args.max_steps,
        max_step_tokens=args.max_step_tokens,
        max_tokens=args.max_tokens,
        max_candidates=args.max_candidates,
        default_deadline_s=args.deadline,
        max_deadline_s=args.max_deadline,
    )
    try:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        load_policy(args.policy, args.policy_dir)  # fail now on a bad default policy
        orch = Orchestrator.from_name(
            args.model, quant=args.quant, device=args.device, dtype=args.dtype, group_size=args.group_size
        )
    except QslmError as exc:
        print(f"qslm serve: {exc}", file=sys.stderr)
        return 1
    app = create_app(
        orch,
        db_path=args.db,
        policy_dirs=args.policy_dir,
        default_policy=args.policy,
        queue_size=args.queue_size,
        limits=limits,
        workers=args.workers,
    )
    uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, timeout_graceful_shutdown=30)).run()
    return 0
