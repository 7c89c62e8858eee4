"""``qslm eval``: several configurations side by side on the same questions, resumable.

Each configuration (``MODEL:QUANT:METHOD[:POLICY]``, see :mod:`orchestrator.eval_data`) answers
every question. Plain greedy and self-consistency advance questions as a batch; the orchestrated
method runs ``batch`` solves at once through :meth:`Orchestrator.solve_iter`, their steps generated as one
batch (:mod:`orchestrator.batching`). Each model × quantization
is loaded once and all its configurations run before the next one loads.

Every answered question is appended at once to ``OUT/results.jsonl`` (one line per question ×
configuration, flushed), keyed by configuration id and question id: an interrupted run resumes
where it stopped and a finished one is not recomputed. After the run, ``summary.json``,
``results.md`` and two plots are written from that file.

The parts: :mod:`~orchestrator.eval_data` (question files, configuration strings),
:mod:`~orchestrator.eval_methods` (plain, self-consistency, orchestrated), :mod:`~orchestrator.eval_stats`
(Wilson intervals, fidelity, restoration, cost) and :mod:`~orchestrator.eval_report` (table and plots).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from orchestrator.errors import InputError
from orchestrator.eval_data import EvalConfig, EvalQuestion, load_questions, parse_config
from orchestrator.eval_methods import RUNNERS
from orchestrator.eval_stats import summarize

log = structlog.get_logger(__name__)

RESULTS_FILE = "results.jsonl"
DEFAULT_MAX_TOKENS = 320  # a GSM8K answer is ~250 tokens
DEFAULT_BATCH = 8


# --------------------------------------------------------------------------------------------- storage


# what every reader of a row indexes: the types a row written by a runner has, and their names
_ROW_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "config": ((str,), "text"),
    "question_id": ((str,), "text"),
    "index": ((int,), "a whole number"),
    "tokens": ((int,), "a whole number"),
    "seconds": ((int, float), "a number"),
}


def row_problem(row: Any) -> str | None:
    """What keeps a parsed JSON line from being a result row, or None.

    >>> row_problem([1, 2])
    'a JSON array, not an object'
    >>> row_problem({"config": "m:none:plain", "question_id": "q1", "index": "0", "tokens": 3, "seconds": 1.0})
    "'index' is not a whole number"
    """
    if not isinstance(row, dict):
        kind = {list: "array", str: "string", type(None): "null"}.get(type(row), "number")
        return f"a JSON {kind}, not an object"
    for key, (kinds, name) in _ROW_FIELDS.items():
        if key not in row:
            return f"no {key!r}"
        if isinstance(row[key], bool) or not isinstance(row[key], kinds):
            return f"{key!r} is not {name}"
    if row["index"] < 0:
        return "'index' is negative"
    return None


class ResultStore:
    """The per-question JSONL: what is done, and appending (flushed) what gets done."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        # a kill mid-write leaves a last line without its newline: the next row must not be glued onto it
        self._cut_tail = False
        if path.is_file():
            # errors="replace": a kill can cut a character in two; that line then fails to parse and is recomputed
            with path.open(encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, start=1):
                    self._cut_tail = not line.endswith("\n")
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a kill mid-write: recomputed
                        log.warning("results_line_unreadable", path=str(path), line=lineno)
                        continue
                    problem = row_problem(row)
                    if problem:  # whole but not ours: guessing what it meant could mix it into the figures
                        raise InputError(
                            f"{path}:{lineno} is not a result row ({problem}): "
                            "mend or remove that line, or give another output folder"
                        )
                    self.rows[(row["config"], row["question_id"])] = row

    def done(self, config: EvalConfig, question: EvalQuestion) -> bool:
        return (config.id, question.id) in self.rows

    def add(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            if self._cut_tail:
                f.write("\n")
                self._cut_tail = False
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
        self.rows[(row["config"], row["question_id"])] = row

    def conflicts(
        self,
        configs: Sequence[EvalConfig],
        questions: Sequence[EvalQuestion],
        settings: dict[str, Any],
        digests: dict[str, str] | None = None,
    ) -> list[str]:
        """Rows of these configurations and questions made with other ``settings`` (token budget, seed) or,
        given ``digests`` (configuration id → :func:`policy_digest`), under another version of their policy:
        resuming would mix them with new rows, so a run refuses rather than reuse or replace them. Rows
        that predate a setting (no such field) are taken as made with it."""
        found: dict[tuple[str, str, Any, Any], int] = {}
        for row in self.for_configs(configs, questions):
            own = {**settings, "policy_digest": digests[row["config"]]} if digests else settings
            for key, value in own.items():
                if key in row and row[key] != value:
                    what = (row["config"], key, row[key], value)
                    found[what] = found.get(what, 0) + 1
        said = []
        for (c, k, old, new), n in found.items():
            rows = f"{n} row{'s' * (n != 1)} of {c}"
            said.append(
                f"{rows} were made under another version of its policy"
                if k == "policy_digest"
                else f"{rows} have {k} {old} (this run: {new})"
            )
        return said

    def other_questions(self, questions: Sequence[EvalQuestion]) -> list[str]:
        """Where the stored rows disagree with these questions: a question of another file at the same
        position, the same question at another position (the file was reordered or a line inserted), or
        the same question scored against another gold answer. Rows carry their position, which the limit,
        the leading-questions rule and the report's question numbers rely on, so a run refuses rather than
        add rows that mean another question at the same position."""
        by_id = {q.id: q for q in questions}
        found: dict[str, int] = {}
        for (_, qid), row in self.rows.items():
            q = by_id.get(qid)
            if q is not None and "gold" in row and str(row["gold"]) != q.gold:
                what = f"question {q.index + 1} was scored against the answer {row['gold']!r} (this file: {q.gold!r})"
            elif q is not None and row["index"] != q.index:
                what = (
                    f"question {qid} was number {row['index'] + 1} there, {q.index + 1} here: the file's order changed"
                )
            elif q is None and row["index"] < len(questions):
                here = questions[row["index"]].id
                what = f"question {row['index'] + 1} there is {qid}, here {here}: they come from another question file"
            else:
                continue
            found[what] = found.get(what, 0) + 1
        return [f"{what} ({n} row{'s' * (n != 1)})" for what, n in found.items()]

    def for_configs(self, configs: Sequence[EvalConfig], questions: Sequence[EvalQuestion]) -> list[dict[str, Any]]:
        ids = {q.id for q in questions}
        wanted = {c.id for c in configs}
        return [r for (c, q), r in self.rows.items() if c in wanted and q in ids]


# ------------------------------------------------------------------------------------------------- run


def policy_digest(config: EvalConfig) -> str:
    """A short hash of the configuration's policy: rows keep it, and a run refuses to mix rows of an edited
    policy (a recalibrated threshold, another layer choice) with new ones.

    Hashed: the whole policy as loaded (``extends`` resolved; an edit to a field the method does not read
    refuses too), less its name and description and the fields left at their defaults, so a new field in
    the schema does not orphan stored rows (a changed default goes unseen). A profile it escalates by counts
    by its contents, not by where the checkout lies."""
    import hashlib

    from policies import load_policy

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:12]

    policy = load_policy(config.policy_name).model_dump(mode="json", exclude_defaults=True)
    layers = policy.get("escalation", {}).get("layers")
    if isinstance(layers, str) and layers.startswith("profile:"):
        profile = Path(layers.removeprefix("profile:")).expanduser()
        policy["escalation"]["layers"] = "profile:" + (sha(profile.read_bytes()) if profile.is_file() else "missing")
    policy.pop("name", None)
    policy.pop("description", None)
    return sha(json.dumps(policy, sort_keys=True).encode("utf-8"))


def machine_name(device: str = "auto") -> str:
    """What the rows' times were taken on: the GPU's name, or the CPU's model and the threads torch uses.
    Machines here differ 2x in speed, so time ratios pair only rows of one machine (``same_machine``)."""
    import platform

    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:  # not Linux
        pass
    return f"cpu: {model} ({torch.get_num_threads()} threads)"


def _load(model: str, quant: str, device: str) -> Any:
    from orchestrator.loading import load

    return load(model, quant=quant, device=device)


def run_eval(
    data: str | Path,
    configs: Sequence[EvalConfig | str],
    out: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    batch: int = DEFAULT_BATCH,
    solves: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    device: str = "auto",
    progress: bool = True,
    reports: bool = True,
    loader: Callable[[str, str, str], Any] | None = None,
) -> dict[str, Any]:
    """Run every configuration on the first ``limit`` questions of ``data``; returns the summary.

    Questions already in ``OUT/results.jsonl`` for a configuration are skipped. ``batch`` rows advance
    together in plain and self-consistency runs; ``solves`` orchestrated solves run at once, their steps
    merged (default: ``batch``). On a CPU plain rows gain from large batches, while each orchestrated solve
    holds a cache per candidate, so the two are set apart.
    """
    from tqdm import tqdm

    parsed = [c if isinstance(c, EvalConfig) else parse_config(c) for c in configs]
    if not parsed:
        raise InputError("no configuration given: add --config MODEL:QUANT:METHOD[:POLICY]")
    if len({c.id for c in parsed}) != len(parsed):
        raise InputError("a configuration is given twice")
    if batch < 1 or max_tokens < 1 or (solves is not None and solves < 1):
        raise InputError("--batch, --solves and --max-tokens must be at least 1")
    at_once = {m: (solves or batch) if m == "orchestrated" else batch for m in RUNNERS}
    questions = load_questions(data, limit=limit)
    if not questions:
        raise InputError(f"no questions to run: {data} is empty" if limit != 0 else "--limit 0 leaves no questions")
    digests = {c.id: policy_digest(c) for c in parsed}  # also: a policy that does not load fails before a model does
    out_dir = Path(out)
    store = ResultStore(out_dir / RESULTS_FILE)
    mixed = store.other_questions(questions)
    if mixed:
        raise InputError(
            f"{store.path} holds results of other questions: {'; '.join(mixed[:3])}"
            f"{f' (and {len(mixed) - 3} more)' if len(mixed) > 3 else ''}. Give another output folder"
        )
    clashes = store.conflicts(parsed, questions, {"max_tokens": max_tokens, "seed": seed}, digests)
    if clashes:
        raise InputError(
            f"{store.path} holds results made with other settings: {'; '.join(clashes)}. "
            "Rerun with the same settings to resume, or give another output folder"
        )
    loader = loader or _load
    machine = machine_name(device)
    groups: dict[tuple[str, str], list[EvalConfig]] = {}
    for c in parsed:
        groups.setdefault(c.load_key, []).append(c)
    for (model, quant), group in groups.items():
        todo = {c.id: [q for q in questions if not store.done(c, q)] for c in group}
        if not any(todo.values()):
            continue
        loaded = loader(model, quant, device)
        try:
            for c in group:
                pending = todo[c.id]
                if not pending:
                    continue
                bar = tqdm(
                    total=len(questions),
                    initial=len(questions) - len(pending),
                    desc=c.id,
                    unit="q",
                    file=sys.stderr,
                    disable=not progress,
                    dynamic_ncols=True,
                )

                def sink(row: dict[str, Any], bar: Any = bar) -> None:
                    row.update(
                        seed=seed,
                        max_tokens=max_tokens,
                        policy_digest=digests[row["config"]],
                        machine=machine,
                        time=time.strftime("%Y-%m-%dT%H:%M:%S"),
                    )
                    store.add(row)
                    bar.update(1)

                try:
                    RUNNERS[c.method](
                        loaded, c, pending, sink, batch=at_once[c.method], max_tokens=max_tokens, seed=seed
                    )
                finally:
                    bar.close()
        finally:
            del loaded
            gc.collect()
    summary = build_summary(
        store.for_configs(parsed, questions),
        parsed,
        data=str(data),
        n_questions=len(questions),
        settings={
            "seed": seed,
            "batch": batch,
            "solves": solves or batch,
            "max_tokens": max_tokens,
            "device": device,
            "machine": machine,  # of this run; rows from earlier runs name their own
        },
    )
    if reports:
        from orchestrator.eval_report import write_reports

        write_reports(summary, out_dir)
    return summary


def build_summary(
    rows: Sequence[dict[str, Any]],
    configs: Sequence[EvalConfig],
    *,
    data: str,
    n_questions: int,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The JSON summary: settings and one entry per configuration."""
    return {
        "data": data,
        "n_questions": n_questions,
        "settings": settings,
        "configs": summarize(rows, configs, expected=n_questions),
    }


# ------------------------------------------------------------------------------------------------- CLI


def standard_configs(model: str, quant: str = "sim-nf4", policy: str = "arithmetic") -> list[str]:
    """The comparison every question about a quantized model starts with: the reference, the quantized
    model plain, with the orchestrator, and self-consistency@4 as the classic baseline at a similar cost.

    >>> standard_configs("m")
    ['m:none:plain', 'm:sim-nf4:plain', 'm:sim-nf4:orchestrated:arithmetic', 'm:sim-nf4:sc4']
    """
    if quant == "none":
        raise InputError("--quant none: the standard comparison sets a quantized model against full precision")
    return [
        f"{model}:none:plain",
        f"{model}:{quant}:plain",
        f"{model}:{quant}:orchestrated:{policy}",
        f"{model}:{quant}:sc4",
    ]


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``qslm eval``."""
    parser.add_argument(
        "data",
        metavar="DATA.jsonl",
        help="questions: GSM8K (question/answer '#### N') or MATH (problem/solution with \\boxed{}) JSON lines",
    )
    parser.add_argument(
        "--config",
        action="append",
        dest="configs",
        default=[],
        metavar="MODEL:QUANT:METHOD[:POLICY]",
        help="a configuration (repeat); METHOD is plain, orchestrated or scK, e.g. "
        "qwen2.5-coder-0.5b:sim-nf4:orchestrated:arithmetic (default: the standard comparison, see --model)",
    )
    from orchestrator.catalog import DEFAULT_MODEL

    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"without --config: compare MODEL at full precision, under --quant plain, orchestrated (--policy) "
        f"and self-consistency@4 (default {DEFAULT_MODEL})",
    )
    parser.add_argument("--quant", default="sim-nf4", help="without --config: the quantization (default sim-nf4)")
    parser.add_argument("--policy", default="arithmetic", help="without --config: the policy (default arithmetic)")
    parser.add_argument(
        "--out",
        default="eval-out",
        metavar="DIR",
        help="results.jsonl, summary.json, results.md and plots go here; a rerun resumes (default eval-out)",
    )
    parser.add_argument("--limit", type=int, default=None, help="the first N questions only (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of sampled methods (default 0)")
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"questions advanced together by plain and self-consistency (rows: questions x chains) "
        f"(default {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--solves",
        type=int,
        default=None,
        metavar="K",
        help="orchestrated solves at once, their steps batched (default: --batch)",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        help=f"most generated tokens per answer/chain (default {DEFAULT_MAX_TOKENS})",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``qslm eval`` from parsed arguments; prints the Markdown table."""
    summary = run_eval(
        args.data,
        args.configs or standard_configs(args.model, args.quant, args.policy),
        args.out,
        limit=args.limit,
        seed=args.seed,
        batch=args.batch,
        solves=args.solves,
        max_tokens=args.max_tokens,
        device=args.device,
        progress=not args.no_progress,
    )
    from orchestrator.eval_report import markdown_table

    print(markdown_table(summary))
    print(f"\nresults in {Path(args.out)}/ ({RESULTS_FILE}, summary.json, results.md, *.png)", file=sys.stderr)
    return 0
