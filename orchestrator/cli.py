"""``qslm``: the command line. Errors become one-line messages here and nowhere else."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.errors import QslmError
from policies.loading import list_policies

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Subcommands defined beside their code: (name, help, module, add-arguments function, run function).
_SUBCOMMANDS = (
    ("check", "check the arithmetic claims of one step of text", "verifiers.cli", "add_check_arguments", "run_check"),
    ("synth", "write a seeded synthetic arithmetic word-problem suite (GSM8K format)", "orchestrator.synthetic",
     "add_synth_arguments", "run_synth"),
    ("eval", "evaluate configurations side by side (model x quant x method x policy)", "orchestrator.evaluate",
     "add_eval_arguments", "run_eval_command"),
    ("profile", "per-layer and per-token-class sensitivity of a model to quantization", "orchestrator.profile_cli",
     "add_profile_arguments", "run_profile_command"),
    ("calibrate", "set a policy's confidence thresholds from scored, checked greedy steps", "orchestrator.calibrate",
     "add_calibrate_arguments", "run_calibrate_command"),
    ("serve", "serve solves over HTTP (one model per process)", "orchestrator.server_cli", "add_serve_arguments",
     "run_serve"),
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except QslmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller model (see `qslm models`) or a shorter question", file=sys.stderr)
        return EXIT_FAIL


def _stderr_logger(*_args: object) -> Any:
    import structlog

    return structlog.PrintLogger(sys.stderr)


def _configure_logging(verbose: int) -> None:
    import structlog

    level = logging.WARNING - 10 * min(verbose, 2)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,  # sys.stderr as it is when logging, not when configured
    )
    if verbose < 2:  # transformers' own chatter (progress bars stay)
        logging.getLogger("transformers").setLevel(logging.ERROR)
        import os

        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qslm",
        description="Drive a quantized small language model through a chain of thought, one checked step at a time.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(metavar="COMMAND")

    solve = sub.add_parser("solve", help="solve questions step by step, streaming each step")
    solve.add_argument("questions", nargs="+", metavar="QUESTION", help="one or more questions ('-' reads stdin)")
    _add_model_arguments(solve)
    solve.add_argument(
        "--policy",
        default="default",
        help=f"policy name ({', '.join(list_policies())}) or YAML path (default: default)",
    )
    solve.add_argument("--max-steps", type=int, default=None, help="most steps per question (default: the policy's)")
    solve.add_argument("--max-tokens", type=int, default=None, help="most kept tokens per question (default: policy)")
    solve.add_argument("--seed", type=int, default=None, help="seed for sampling (default: the policy's)")
    solve.add_argument("--temperature", type=float, default=None, help="first-draft temperature; 0 = greedy")
    solve.add_argument(
        "--trace",
        default=None,
        metavar="PATH",
        help="write the reasoning graph: .html (one self-contained page), .json or .mmd",
    )
    solve.add_argument("--json", action="store_true", help="print one JSON object per question instead of text")
    solve.add_argument("--full-json", action="store_true", help="with --json: include the whole trace")
    solve.set_defaults(handler=_cmd_solve)

    models = sub.add_parser("models", help="list the model catalog, or pull/remove a model")
    models_sub = models.add_subparsers(metavar="ACTION")
    listing = models_sub.add_parser("list", help="list catalog models (the default action)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_cmd_models_list)
    pull = models_sub.add_parser("pull", help="fetch, verify and convert a catalog model once")
    pull.add_argument("name")
    pull.set_defaults(handler=_cmd_models_pull)
    remove = models_sub.add_parser("rm", help="delete a catalog model's cached files")
    remove.add_argument("name")
    remove.set_defaults(handler=_cmd_models_rm)
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=_cmd_models_list)

    for name, help_text, module, add_args, run in _SUBCOMMANDS:
        cmd = sub.add_parser(name, help=help_text)
        mod = importlib.import_module(module)  # light modules: the heavy work is imported when run
        getattr(mod, add_args)(cmd)
        cmd.set_defaults(handler=getattr(mod, run))
    return parser


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    from orchestrator.catalog import DEFAULT_MODEL

    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="catalog name (see `qslm models`), a safetensors folder, a .gguf file or a hub id "
        f"(default {DEFAULT_MODEL})",
    )
    p.add_argument(
        "--quant",
        default="none",
        metavar="QUANT",
        help="none | sim-nf4 | sim-fp4 | sim-int8 | rtn-int2..rtn-int8 (rounded weights, full speed) | bnb-nf4 | "
        "bnb-fp4 | bnb-int8 (real bitsandbytes: less memory, but on a CPU 4-11x slower than fp32)",
    )
    p.add_argument("--group-size", type=int, default=128, help="group size of rtn-* quantization (default 128)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU)")


def _read_questions(items: Sequence[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        out.append(sys.stdin.read() if item == "-" else item)
    return out


def _cmd_solve(args: argparse.Namespace) -> int:
    from orchestrator.api import Orchestrator
    from orchestrator.prompting import check_question
    from policies import load_policy, policy_from_dict

    questions = [check_question(q) for q in _read_questions(args.questions)]
    policy = load_policy(args.policy)
    data = policy.model_dump()
    if args.max_steps is not None:
        data["steps"]["max_steps"] = args.max_steps
    if args.max_tokens is not None:
        data["steps"]["max_total_tokens"] = args.max_tokens
        data["steps"]["max_step_tokens"] = min(data["steps"]["max_step_tokens"], args.max_tokens)
    if args.temperature is not None:
        data["sampling"]["temperature"] = args.temperature
    policy = policy_from_dict(data, source=f"{args.policy} with command-line changes")
    if args.trace and len(questions) > 1 and "{n}" not in args.trace:
        raise _usage("with several questions, --trace needs '{n}' in its name (e.g. trace-{n}.html)")
    orch = Orchestrator.from_name(
        args.model, quant=args.quant, device=args.device, dtype=args.dtype, group_size=args.group_size, policy=policy
    )
    status = EXIT_OK
    for i, question in enumerate(questions):
        if not args.json:
            print(f"Q{i + 1}: {question}" if len(questions) > 1 else f"Q: {question}", flush=True)
        on_event = None if args.json else _print_event
        result = orch.solve(question, seed=args.seed, on_event=on_event)
        if args.trace:
            path = result.trace.save(args.trace.replace("{n}", str(i + 1)))
            if not args.json:
                print(f"  trace written to {path}")
        if args.json:
            print(json.dumps(result.to_dict() if args.full_json else _summary(result), ensure_ascii=False), flush=True)
        else:
            fired = ", ".join(f"{k} {v}" for k, v in sorted(result.interventions.items())) or "none"
            rate = result.tokens_spent / result.seconds if result.seconds else 0.0
            print(
                f"Answer: {result.answer if result.answer is not None else '(none found)'}"
                f"   [{result.final.get('resolution', '')}]"
            )
            print(
                f"  {len(result.steps)} steps, {result.tokens} tokens kept / {result.tokens_spent} generated in "
                f"{result.seconds:.1f} s ({rate:.1f} tok/s); interventions: {fired}",
                flush=True,
            )
        if result.answer is None:
            status = EXIT_FAIL
    return status


def _summary(result: Any) -> dict[str, Any]:
    return {
        "question": result.question,
        "answer": result.answer,
        "final": result.final,
        "steps": [
            {k: s[k] for k in ("text", "origin", "confidence", "flags")}
            | {"verdicts": [v["status"] for v in s["verdicts"]]}
            for s in result.steps
        ],
        "confidence": result.confidence,
        "interventions": result.interventions,
        "escalations": result.escalations,
        "corrections": result.corrections,
        "tokens": result.tokens,
        "tokens_spent": result.tokens_spent,
        "seconds": round(result.seconds, 3),
        "policy": result.policy,
        "model": result.trace.meta.get("model"),
        "quant": result.trace.meta.get("quant"),
        "trace_id": result.trace_id,
    }


_MARK = {"correct": "ok", "wrong": "WRONG", "unknown": "?"}


def _print_event(event: dict[str, Any]) -> None:
    kind = event["event"]
    if kind == "step":
        text = event["text"].strip()
        if not text:
            return
        marks = " ".join(_MARK.get(v, v) for v in event["verdicts"] if v != "unknown")
        origin = "" if event["origin"] == "greedy" else f" <{event['origin']}>"
        print(
            f"  [{event['index'] + 1:>2}] {text}   (conf {event['confidence']:.2f}{origin}"
            f"{' ' + marks if marks else ''})",
            flush=True,
        )
    elif kind == "correct":
        print(f"       corrected: {event['before'].strip()}  ->  {event['after'].strip()}", flush=True)
    elif kind == "escalate":
        print(
            f"       escalated layers {event['layers']}: conf {event['before']:.2f} -> {event['after']:.2f}", flush=True
        )
    elif kind == "resample":
        print(f"       re-sampled {event['n']} candidates (attempt {event['attempt']})", flush=True)
    elif kind == "flag":
        print("       flagged: a wrong claim was kept", flush=True)


def _cmd_models_list(args: argparse.Namespace) -> int:
    from orchestrator.catalog import DEFAULT_MODEL, describe

    rows = describe()
    if getattr(args, "json", False):
        print(json.dumps(rows, indent=2, default=str))
        return EXIT_OK
    cols = ("name", "parameters", "size", "licence", "ready", "source")
    table = [[("yes" if r["ready"] else "no") if c == "ready" else str(r.get(c, "")) for c in cols] for r in rows]
    for row in table:
        if row[0] == DEFAULT_MODEL:
            row[0] += " (default)"
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return EXIT_OK


def _cmd_models_pull(args: argparse.Namespace) -> int:
    from orchestrator.catalog import human_size, pull

    report = pull(args.name)
    print(f"{args.name}: ready at {report.path} ({human_size(report.bytes_on_disk)} on disk, {report.seconds:.0f} s)")
    return EXIT_OK


def _cmd_models_rm(args: argparse.Namespace) -> int:
    from orchestrator.catalog import human_size, remove

    freed = remove(args.name)
    print(f"{args.name}: removed, {human_size(freed)} freed")
    return EXIT_OK


def _usage(message: str) -> QslmError:
    from orchestrator.errors import InputError

    return InputError(message)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
