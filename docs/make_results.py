# ruff: noqa: E501
"""Build docs/results.md: run (or resume) the evaluation plan, then write the report from what is finished.

    python docs/make_results.py --gsm8k /path/to/gsm8k.jsonl      # run every stage not yet done, then report
    python docs/make_results.py --report-only                       # rebuild the report from docs/results/

The GSM8K file is an argument (the data stays out of the repository); the synthetic suite is generated
from a seed. Per-question results go to ``docs/results/<suite>-<model>/results.jsonl`` and a rerun resumes
from them, so the report rebuilds without recomputing. Stages run in order of how much they tell (the
0.5B's reference / sim-nf4 / sim-nf4 + orchestrator pairs on 20 GSM8K questions first, then wider);
each stage runs in a child process (memory returns to the system between models, and code fixed
meanwhile is picked up), and the report is rebuilt after every stage.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOCS = ROOT / "docs"
RESULTS = DOCS / "results"
REPORT = DOCS / "results.md"
SYNTH_FILE = RESULTS / "synthetic_suite.jsonl"
SYNTH_N, SYNTH_SEED = 60, 0
M05, M15 = "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"
POLICY = "arithmetic"  # same prompt as plain greedy (default template), so every comparison is paired
MAX_TOKENS = {"gsm8k": 320, "synthetic": 320}  # at 200, 9 of the 1.5B's first 16 synthetic answers were cut
# Rows per batch of plain and self-consistency answers: the 1.5B decoded 6.6 tok/s at 32 rows against 3.4 at 8
# (sim-nf4, one thread, measured); the first stages ran 8 (each row records its batch).
PLAIN_BATCH = 32
SOLVES = 16  # orchestrated solves at once, unless --batch says otherwise
# The 1.5B writes longer answers than the 0.5B (which 320 already cuts on ~30% of GSM8K questions): more room.
MAX_TOKENS_FOR = {("gsm8k", M15): 512}


@dataclass(frozen=True)
class Superseded:
    """Rows a fix made stale: those of the stage's configurations written before ``before`` ran the old code.
    The stage sets them aside (``superseded.jsonl`` beside the results) and recomputes them; until then the
    report shows them with ``why``."""

    before: str  # ISO time, as rows record it
    why: str


@dataclass(frozen=True)
class Stage:
    name: str
    suite: str  # "gsm8k" | "synthetic"
    model: str
    limit: int
    methods: tuple[str, ...]  # "QUANT:METHOD[:POLICY]"
    superseded: Superseded | None = None

    @property
    def configs(self) -> list[str]:
        return [f"{self.model}:{m}" for m in self.methods]

    @property
    def out(self) -> Path:
        return RESULTS / f"{self.suite}-{self.model.split('-')[-1]}"

    @property
    def max_tokens(self) -> int:
        """The answer budget: one per output folder (suite × model), so a folder's rows all share it."""
        return MAX_TOKENS_FOR.get((self.suite, self.model), MAX_TOKENS[self.suite])


@dataclass(frozen=True)
class ProfileStage:
    """Profile ``model`` under ``quant`` (synthetic calibration text), then compare escalation layer
    choices on held-out GSM8K text: the default slice against the profile's picks at the same count."""

    name: str
    model: str
    quant: str

    @property
    def profile(self) -> Path:
        return PROFILES / f"{self.model}-{self.quant}.json"

    @property
    def layers_report(self) -> Path:
        return RESULTS / "layers" / f"{self.model}-{self.quant}.json"


@dataclass(frozen=True)
class CalibrateStage:
    """Calibrate the policy's confidence thresholds for ``model`` under ``quant`` on GSM8K questions the
    evaluation does not use; writes the report and a policy with the suggested thresholds."""

    name: str
    model: str
    quant: str

    @property
    def report(self) -> Path:
        return RESULTS / "calibration" / f"{self.model}-{self.quant}.json"


# GSM8K questions 200..223. The arithmetic policy's own threshold already re-samples ~16% of the 0.5B's
# greedy steps under sim-nf4 (measured), so the calibrated variant asks for a third of that: the cost ablation.
CALIB_OFFSET, CALIB_N, CALIB_RATE = 200, 24, 0.05

PROFILES = DOCS / "profiles"
POLICIES = RESULTS / "policies"  # the arithmetic policy with a profile's layers (written by profile stages)
DEFAULT_LAYERS = "middle:0.25"  # what the arithmetic policy inherits from default
LAYER_TEXTS = 8  # held-out GSM8K questions (with worked answers) the layer choices are compared on


def calibrated_policy(model: str, quant: str) -> Path:
    """The policy file with thresholds calibrated for ``model`` under ``quant`` (relative to the repository)."""
    return (POLICIES / f"{POLICY}-calibrated-{model.split('-')[-1]}-{quant}.yaml").relative_to(ROOT)


def profiled_policy(model: str, quant: str) -> Path:
    """The policy file naming the profile of ``model`` under ``quant`` (path relative to the repository)."""
    return (POLICIES / f"{POLICY}-profiled-{model.split('-')[-1]}-{quant}.yaml").relative_to(ROOT)


CORE = ("none:plain", "sim-nf4:plain", f"sim-nf4:orchestrated:{POLICY}")
INT3 = ("rtn-int3:plain", f"rtn-int3:orchestrated:{POLICY}")
SC = ("sim-nf4:sc4",)
INT8 = ("sim-int8:plain",)  # the yardstick: fidelity of a model rounded to 8 bit

PROFILED_05 = (
    f"sim-nf4:orchestrated:{profiled_policy(M05, 'sim-nf4')}",
    f"rtn-int3:orchestrated:{profiled_policy(M05, 'rtn-int3')}",  # where the profile's layers differ most
)
# The 1.5B's 3-bit profile picks restore twice the KL the default slice does (52.5% against 24.0%): end to end too?
PROFILED_15 = (f"rtn-int3:orchestrated:{profiled_policy(M15, 'rtn-int3')}",)
VERIFY_ONLY = ("sim-nf4:orchestrated:verify_only",)  # the ablation: what the checkers alone buy back
CALIBRATED_05 = (f"sim-nf4:orchestrated:{calibrated_policy(M05, 'sim-nf4')}",)

# Which machine wrote the rows from before rows recorded their own (``machine``), by when they were written:
# the sessions of 2026-11-21 to 2026-11-25 02:20 ran on earlier 2-core machines that were not recorded, the one
# from 02:20 on an AMD EPYC about 1.9x faster. A time ratio pairs only rows of one machine (``same_machine``).
MACHINES_BEFORE_RECORDING = (
    ("2026-11-25T02:20:00", "cpu: earlier machines (not recorded)"),
    ("9999", "cpu: AMD EPYC (2 threads)"),
)


def machine_of(row: dict[str, Any]) -> str:
    """The machine a row was written on: its own record, else the one that ran the plan when it was written."""
    if "machine" in row:
        return str(row["machine"])
    written = str(row.get("time") or "")
    return next(name for until, name in MACHINES_BEFORE_RECORDING if written < until)


# The stage synthetic-1.5b-60 ran its orchestrated rows (until 18:23) on the checker before its fixes of that day.
CHECKER_FIXES = Superseded(
    before="2026-11-24T18:23:00",
    why="these rows predate fixes to the arithmetic checker, which rewrote some right claims into wrong ones: "
    'it read a bullet opening a line as a minus sign ("- 18 divided by 6 equals 3" became "equals -3") and a '
    r"subscript as a result (`\text{Distance}_2 = 75 × 3` became `\text{Distance}_225`). Two of the four "
    "questions lost (36 and 56, both right under plain greedy) went the first way; three questions plain greedy "
    "missed too (37, 41, 59; the reference got 37 and 41) carry the second, which may have kept them from being "
    "won back; the other two losses ran out of the token budget. Stage `synthetic-1.5b-60-checker-fix` reruns "
    "them",
)

PLAN: tuple[Stage | ProfileStage | CalibrateStage, ...] = (
    Stage("gsm8k-0.5b-core-20", "gsm8k", M05, 20, CORE),
    ProfileStage("profile-0.5b-sim-nf4", M05, "sim-nf4"),
    Stage("gsm8k-0.5b-int3-sc-20", "gsm8k", M05, 20, CORE + INT3 + SC),
    ProfileStage("profile-0.5b-rtn-int3", M05, "rtn-int3"),
    CalibrateStage("calibrate-0.5b-sim-nf4", M05, "sim-nf4"),
    Stage("gsm8k-0.5b-ablations-20", "gsm8k", M05, 20, CORE + INT3 + SC + VERIFY_ONLY + CALIBRATED_05 + PROFILED_05),
    ProfileStage("profile-1.5b-sim-nf4", M15, "sim-nf4"),
    Stage("synthetic-1.5b-60", "synthetic", M15, 60, CORE),
    ProfileStage("profile-1.5b-rtn-int3", M15, "rtn-int3"),  # under an hour: the last profile the report needs
    Stage("gsm8k-1.5b-30", "gsm8k", M15, 30, CORE),
    Stage("gsm8k-0.5b-60", "gsm8k", M05, 60, CORE + INT3 + SC),
    Stage("synthetic-1.5b-60-checker-fix", "synthetic", M15, 60, CORE[2:], superseded=CHECKER_FIXES),
    Stage("synthetic-0.5b-60", "synthetic", M05, 60, CORE + INT3 + SC + INT8),
    Stage("synthetic-1.5b-more", "synthetic", M15, 60, CORE + INT3 + SC),
    # 3-bit rows before self-consistency: they are the cheaper half of the 1.5B's GSM8K coverage.
    Stage("gsm8k-1.5b-int3", "gsm8k", M15, 30, CORE + INT3),
    Stage("gsm8k-1.5b-sc", "gsm8k", M15, 30, CORE + INT3 + SC),
    # The ablations last: the report needs every model x quantization x method first.
    Stage("gsm8k-1.5b-profiled", "gsm8k", M15, 30, CORE + INT3 + SC + PROFILED_15),
    Stage("gsm8k-0.5b-60-ablations", "gsm8k", M05, 60, VERIFY_ONLY + CALIBRATED_05 + PROFILED_05 + INT8),
)


def targets() -> dict[Path, tuple[Stage, list[str], int]]:
    """Per output folder: a stage of it, every configuration the plan puts there, and the widest limit."""
    out: dict[Path, tuple[Stage, list[str], int]] = {}
    for st in PLAN:
        if not isinstance(st, Stage):
            continue
        _, configs, limit = out.get(st.out, (st, [], 0))
        configs = configs + [c for c in st.configs if c not in configs]
        out[st.out] = (st, configs, max(limit, st.limit))
    return out


# ---------------------------------------------------------------------------------------------- running


def ensure_synthetic() -> Path:
    if not SYNTH_FILE.is_file():
        from orchestrator.synthetic import generate_problems, write_jsonl

        write_jsonl(generate_problems(SYNTH_N, seed=SYNTH_SEED), SYNTH_FILE)
    return SYNTH_FILE


def run_stage(stage: Stage | ProfileStage | CalibrateStage, gsm8k: Path, device: str, batch: int) -> None:
    import structlog

    from orchestrator.evaluate import run_eval

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if isinstance(stage, ProfileStage):
        run_profile_stage(stage, gsm8k, device)
        return
    if isinstance(stage, CalibrateStage):
        run_calibrate_stage(stage, gsm8k, device, batch)
        return
    data = gsm8k if stage.suite == "gsm8k" else ensure_synthetic()
    if stage.superseded is not None:
        moved = set_aside(stage.out, stage.configs, stage.superseded.before)
        print(f"set aside {moved} rows made before {stage.superseded.before} (superseded.jsonl)", flush=True)
    configs = [c for c in stage.configs if _policy_ready(c)]
    run_eval(
        data,
        configs,
        stage.out,
        limit=stage.limit,
        seed=0,
        batch=PLAIN_BATCH,  # plain and self-consistency rows
        solves=batch,  # orchestrated solves at once
        max_tokens=stage.max_tokens,
        device=device,
        reports=False,
    )


def _stale(row: dict[str, Any], before: str) -> bool:
    return str(row.get("time") or "") < before  # rows without a time are older still


def set_aside(folder: Path, configs: list[str], before: str) -> int:
    """Move the rows of ``configs`` written before ``before`` from the results file to ``superseded.jsonl``
    (kept: what the old code did stays on record), so that a resumed run recomputes them. Returns how many."""
    import json

    from orchestrator.errors import InputError
    from orchestrator.evaluate import RESULTS_FILE, row_problem

    path = folder / RESULTS_FILE
    if not path.is_file():
        return 0
    keep: list[str] = []
    stale: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill: the run recomputes it either way
            continue
        problem = row_problem(row)
        if problem:
            raise InputError(f"{path}: a line is not a result row ({problem}); mend or remove it")
        (stale if row["config"] in configs and _stale(row, before) else keep).append(line)
    if stale:  # appended first: a kill before the swap below repeats rows there, it never loses one
        with (folder / "superseded.jsonl").open("a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in stale)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
        tmp.replace(path)
    return len(stale)


def _policy_ready(config: str) -> bool:
    """False (and said) for a configuration whose policy file an earlier stage has not written yet."""
    from orchestrator.eval_data import parse_config

    policy = parse_config(config).policy or ""
    if policy.endswith(".yaml") and not (ROOT / policy).is_file():
        print(f"skipping {config}: {policy} is written by a stage that has not finished", flush=True)
        return False
    return True


def run_calibrate_stage(stage: CalibrateStage, gsm8k: Path, device: str, batch: int) -> None:
    """Calibrate once (the report is kept); the policy file is rewritten from the report every time."""
    from orchestrator.calibrate import load_report, run_calibration
    from orchestrator.files import write_json, write_text

    report = None
    if stage.report.is_file():
        report = load_report(stage.report)
        if (report.offset, report.n_questions) != (CALIB_OFFSET, CALIB_N) or not report.scores:
            report = None  # measured on other questions, or without the scores to re-derive thresholds
    if report is None:
        report = run_calibration(gsm8k, model=stage.model, quant=stage.quant, policy=POLICY, limit=CALIB_N,
                                 offset=CALIB_OFFSET, batch=batch, max_tokens=MAX_TOKENS["gsm8k"],
                                 target_rate=CALIB_RATE, device=device, progress=False)  # fmt: skip
        report.data = gsm8k.name
    if report.target_rate != CALIB_RATE:
        report = report.retarget(CALIB_RATE)
    write_json(stage.report, report.to_dict())
    policy = ROOT / calibrated_policy(stage.model, stage.quant)
    write_text(policy, report.policy_yaml(policy))


def run_profile_stage(stage: ProfileStage, gsm8k: Path, device: str) -> None:
    """Profile (unless its file exists), write the profiled policy, compare layer choices (unless done)."""
    from orchestrator.files import write_text
    from orchestrator.layer_choice import choose_layers
    from orchestrator.layer_compare import compare_layer_choices
    from orchestrator.loading import load
    from orchestrator.profile import calibration_texts, load_profile, run_profile
    from orchestrator.profile_cli import plot_profile

    loaded = None
    if not stage.profile.is_file():
        loaded = load(stage.model, quant="none", device=device, progress=False)
        checkpoint = stage.profile.with_name(stage.profile.name + ".partial")  # an interrupted profile resumes
        profile = run_profile(loaded, quant=stage.quant, progress=False, checkpoint=checkpoint)
        profile.write_profile(stage.profile)
        plot_profile(profile, stage.profile.with_suffix(".png"))
    profile = load_profile(stage.profile)
    n_layers = len(profile.layers)
    count = len(choose_layers(n_layers, DEFAULT_LAYERS))
    policy = ROOT / profiled_policy(stage.model, stage.quant)
    write_text(
        policy,
        f"# {POLICY}, escalating to the {count} layers of {stage.model} most worth restoring under {stage.quant}\n"
        f"# (the same number of layers as the default {DEFAULT_LAYERS}); written by docs/make_results.py\n"
        f"extends: {POLICY}\n"
        f'escalation:\n  layers: "profile:{os.path.relpath(stage.profile, policy.parent)}"\n'
        f"  profile_layers: {count}\n",
    )
    if stage.layers_report.is_file():
        return
    by_quant = sorted(profile.layers, key=lambda s: (-s.quant_kl, s.index))
    choices: dict[str, Any] = {
        f"default {DEFAULT_LAYERS}": DEFAULT_LAYERS,
        f"profile: top {count} to restore": profile.top_layers(count),
        "profile: top 4 to restore": profile.top_layers(4),
        f"profile: top {count} hurt by quantizing": sorted(s.index for s in by_quant[:count]),
        f"deep:{count / n_layers:.2f}": f"deep:{count / n_layers}",
    }
    report = compare_layer_choices(
        loaded or stage.model, quant=stage.quant, choices=choices, texts=calibration_texts(gsm8k, limit=LAYER_TEXTS),
        device=device, progress=False,
    )  # fmt: skip
    report.write(stage.layers_report)


def run_all(gsm8k: Path, device: str, batch: int, only: str | None) -> int:
    # PASSIVE: OpenMP threads sleep instead of spinning while they wait. On a CPU shared with other torch
    # processes, spinning threads starve each other (a 2-core machine measured 18x slower decoding).
    # MALLOC_ARENA_MAX: concurrent solves run on threads, and glibc gives each thread its own heap, which can keep
    # freed cache tensors from returning to the system: a 1.5B stage (8 solves) held 10.8 GB after 15 min and was
    # still growing ~250 MB a minute; with two arenas it held 8.6 GB after 15 min and 8.5 after 21 (one run each).
    env = {
        "OMP_WAIT_POLICY": "PASSIVE",
        "MALLOC_ARENA_MAX": "2",
        **os.environ,
        "TRANSFORMERS_VERBOSITY": "error",
        "TQDM_MININTERVAL": "60",
    }
    failed: list[str] = []
    for stage in PLAN:
        if only and stage.name != only:
            continue
        what = (
            f"{len(stage.configs)} configs, {stage.limit} questions"
            if isinstance(stage, Stage)
            else f"{type(stage).__name__} of {stage.model} under {stage.quant}"
        )
        print(f"== {time.strftime('%H:%M:%S')} stage {stage.name}: {what}", flush=True)
        cmd = [
            sys.executable,
            __file__,
            "--gsm8k",
            str(gsm8k),
            "--stage",
            stage.name,
            "--device",
            device,
            "--batch",
            str(batch),
        ]
        rc = subprocess.call(cmd, env=env, cwd=ROOT)
        report_rc = subprocess.call([sys.executable, __file__, "--report-only"], env=env, cwd=ROOT)
        if rc != 0:  # later stages do not depend on this one's rows: go on, and say so at the end
            print(f"stage {stage.name} failed (exit {rc}); going on, rerun to resume it", flush=True)
            failed.append(stage.name)
        if report_rc != 0:
            print("report rebuild failed (the results are kept)", flush=True)
    if failed:
        print(f"== {time.strftime('%H:%M:%S')} stages that failed: {', '.join(failed)}", flush=True)
        return 1
    print(f"== {time.strftime('%H:%M:%S')} all stages done", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------- report


@functools.cache
def results_in(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows of one results folder, read once per report (its summary, tier table, layer comparison and
    plan status all read them); :func:`write_report` starts each report from the files."""
    from orchestrator.evaluate import RESULTS_FILE, ResultStore

    return ResultStore(folder / RESULTS_FILE).rows


def folder_summary(folder: Path, configs: list[str], limit: int, stage: Stage) -> dict[str, Any] | None:
    """Summary of one results folder over the plan's configurations and its widest limit (no model, no data)."""
    from orchestrator.eval_data import parse_config
    from orchestrator.evaluate import build_summary

    rows_by_key = results_in(folder)
    if not rows_by_key:
        return None
    parsed = [parse_config(c) for c in configs]
    rows = [{**r, "machine": machine_of(r)} for r in rows_by_key.values() if r["index"] < limit]
    data = (
        "GSM8K (train split, first questions in file order)"
        if stage.suite == "gsm8k"
        else str(SYNTH_FILE.relative_to(ROOT))
    )
    summary = build_summary(
        rows, parsed, data=data, n_questions=limit, settings={"seed": 0, "max_tokens": stage.max_tokens}
    )
    for e in summary["configs"]:  # the tables call these "to be rerun", not "done"
        e["superseded"] = _stale_left(e["config"], stage.out) is not None
    return summary


def write_report() -> Path:
    from orchestrator.eval_report import write_reports

    results_in.cache_clear()  # rows written since the last report
    sections: list[tuple[Stage, dict[str, Any]]] = []
    for folder, (stage, configs, limit) in targets().items():
        summary = folder_summary(folder, configs, limit, stage)
        if summary is None:
            continue
        write_reports(summary, folder)
        sections.append((stage, summary))
    REPORT.write_text(render(sections), encoding="utf-8")
    return REPORT


PUBLISHED = """\
## What this is compared with

| source | model | setting | figure |
|---|---|---|---|
| a study of quantized small models, as commonly cited (its primary source was not found here to re-check) | small model | GSM8K, 4-bit → 4-bit + step verification → full precision | 45% → 65% vs 70%, for +20–30% time |
| Li et al. 2025, *Quantization Meets Reasoning* (arXiv 2505.11574), abstract | Qwen2.5 and Llama-3, 0.5–7B | GSM8K / MATH / AIME under AWQ, GPTQ, SmoothQuant | drops up to 69.8% in the hardest settings; method and execution errors grow more than conceptual ones, starting at an early step that cascades; recovered by fine-tuning on 332 examples (3–5 GPU-minutes) |
| Llama 3.2 model card (meta-llama/llama-models) | Llama-3.2-1B-Instruct | GSM8K-CoT: BF16 / 4-bit PTQ / SpinQuant / QAT+LoRA | 44.4 / 33.1 / 40.6 / 46.5 |
| reproduction of Liu et al. 2025 (arXiv 2504.04823) | DeepSeek-R1-Distill-Qwen-1.5B | MATH-500: BF16 / AWQ w4 / AWQ w3 | 85.0 / 83.4 / 52.6 |
| self-consistency, a reported figure (not re-checked here) | Qwen2.5-1.5B-Instruct | GSM8K, greedy → 16 samples | 70 → 83 (the 0.5B gains little) |
| this project, an earlier measurement | Qwen2.5-Coder-0.5B | GSM8K, same final answer as fp32 | 8-bit 9/16, sim-NF4 3/16 (7/32), RTN-int3 1/16 |

The published figures come from other models, prompts, GSM8K's *test* split and GPUs; they give the
scale of the effects, not numbers to match. Li et al.'s finding that quantization's damage starts at one
early step and cascades is the premise of step-wise intervention; they repair it by fine-tuning the
quantized model, this project at inference time with the weights left as they are. Here GSM8K questions are the first ones of the *train*
split (the only copy on this machine), answers are cut at the token budget shown in each table, and
everything runs on a shared 2-core CPU.
"""

CAVEATS = """\
## How to read the tables

- **n and intervals.** Every accuracy and fidelity carries its n and a Wilson 95% interval. Around 50% an
  interval spans 40 points at n = 20 and 25 at n = 60 (less near 0% or 100%): only large effects are
  visible. A configuration still running is summarized on its leading questions, those before the first
  one not yet answered (concurrent solves finish out of order, the quick ones first; the table's status
  says how many rows are written and how many the figures use).
- **Strict.** Right answers counting only those the model stated (`\\boxed{}`, "the answer is", "#### N"):
  a cut answer with no statement counts wrong (section "Scored strictly"); self-consistency votes again
  with the chains that state theirs ("–" for rows written before they kept those).
- **Paired comparisons.** Fidelity (same final answer as the reference: plain greedy at full precision;
  two missing answers agree) and restoration, (method − quantized) / (reference − quantized), are computed
  on the questions each pair or triple has answered. "Gained / lost" count the questions the method got
  right where plain greedy on the same quantized model got them wrong, and the reverse; p is the exact
  two-sided sign test (McNemar) on those discordant questions; "gained with resample 4, correct 1" names
  what fired on them (`resample`: a batch of candidate steps; `correct`: the arithmetic checker rewrote a
  claim; `escalate`: higher-precision layers regenerated a step; `correct+resample`: both on one question;
  `none`: nothing fired, so the answer moved through batch numerics alone). Firing on a question does not
  prove it made the difference. Restoration is *undefined* when the reference does not score above the
  quantized model on the shared questions (no gap to close): it is then printed as such.
  Above 1 means the method beat the reference's *plain greedy* run: the orchestrator repairs slips the
  full-precision model makes too, so it is not bounded by it.
- **Token budget.** Plain answers stop after the budget of generated tokens; the orchestrator's budget
  is on the tokens it keeps (its rejected candidates come on top and are counted as cost), so both
  write answers of at most the same length. *Cut at budget* counts the answers that reached it before
  they ended (self-consistency: any chain); a cut answer is rarely right, so where many are cut the
  accuracies understate what each configuration can do, all of them alike.
- **Scoring.** An answer is its last `\\boxed{}`, else its last "the answer is …", else its last number
  (the policy's `answer_strategies`), and is right when it equals the gold answer as a number (currency,
  thousands separators, trailing zeros and `%` aside). The last-number fallback applies to answers cut
  at the budget too, as in the usual "flexible" GSM8K scoring, and to every self-consistency chain before
  the vote. A read of every row on 2026-11-25 found it scoring three rows wrongly: the 0.5B's `sim-nf4` +
  orchestrator, GSM8K question 48, counted right from an intermediate "15 MB/s" in a cut answer (21/60
  without it), and the 1.5B's synthetic self-consistency questions 32 and 48 counted wrong because a chain
  cut in the middle of Python code voted its step number or a constant, tying the vote, which chain order
  then settled (50/60 without them). Another 28 right rows, spread over the configurations, rest on a
  cut answer whose last number was the right result of its last calculation; the section "Scored
  strictly" counts such rows wrong (self-consistency aside) and compares again. The `arithmetic` policy
  answers with the chain's last checked value where it differs from the stated one (`on_mismatch:
  prefer_chain`), which overrides a right answer followed by a side computation or a check: the 1.5B under
  `rtn-int3` boxed the right answer to synthetic questions 30 and 37, and the last checked values were
  17/10 ≈ 1.7 and 6 × 23 = 138. The section "The final-answer rule, replayed" scores every orchestrated
  row under each rule.
- **Cost.** Tokens count everything generated (rejected candidates, every self-consistency chain). Each
  row records its `batch`: questions advancing together for plain greedy and self-consistency (4 to 32;
  32 decode ~1.9× the tokens per second of 8 here), solves at once for the orchestrator (1 to 16). An
  orchestrated row at batch 1 solved its question alone, so its wall-time ratio mixes the method's cost
  with the loss of batching (batch 8 decodes ~2.5× the tokens per second of batch 1 here); with several
  solves their steps ran merged into batched runs, wall time shared out among the solves running. The
  token ratio is the fairer cost figure; the time ratio is what a user of this CPU would see.
- **Batch numerics.** Plain greedy answers come from batched, left-padded forwards; the orchestrator's
  from batch-1 forwards or from merged runs of other shapes. Floating-point sums differ slightly between
  them, which by itself flips some greedy tokens. Part of any difference between plain and orchestrated
  on the *reference* model would be this noise; on quantized models it is mixed into the measured effect.
- **Code of the day.** Each row is made by the code of the day it ran. The fixes of 2026-11-24 to the
  arithmetic checker (a bullet read as a minus sign, a subscript or a label's number read as a result, sums
  of different units, a percentage added to a number, whole quotients with a remainder) and to the
  orchestrator (the last number of a step cut by the token limit is left unjudged) came after the 0.5B's orchestrated GSM8K rows on the first 20 questions and the 1.5B's
  orchestrated synthetic rows. No 0.5B configuration lost a question to its orchestration there; the
  1.5B's rows carry a note where they appear, and the plan reruns them. Fixes of 2026-11-25 07:10 (a
  right side restating the left with one part miscomputed, `4 × 14 + 3 × 3 = 196 + 9`, is corrected as a
  whole instead of read as a running computation; a number restating a corrected value follows it; a
  letter multiplying a bracket is a variable and a label's number no factor of it) came before the 1.5B's
  `rtn-int3` orchestrated rows (both suites) and those of later stages, after all the others; on the 2,999
  model lines with an `=` gathered by then they changed the correction of 3 of the 123 lines judged wrong
  and left one more unjudged (`docs/benchmarks/bench_verifiers.json`). One orchestrated row before them
  (1.5B, GSM8K, `sim-nf4`) holds such a line, a variable read as a number; its plain row was wrong too.
  Fixes of 07:50–08:05 (a chain ending on its first side's value, `25% × 80 = 25 × 80 = 2000 / 100 = 20`,
  is not corrected on the way, nor is a chain for a wrong claim elsewhere in its step; only words that
  number things, `Step`, `Day`, `Week`…, make the number after them a label; a sum of labelled terms is
  not judged) came after the 1.5B's synthetic `rtn-int3`
  orchestrated rows and before its GSM8K ones; on the same model lines they changed no judgement.
- **Machine.** Times were taken while other jobs shared the 2 cores, and the run was paused at times to
  leave the machine to someone else's benchmark: wall seconds include that. The CPU seconds in
  brackets (process CPU time, both threads) are not inflated by pauses; the 0.5B's first GSM8K runs
  (reference, `sim-nf4` plain and orchestrated) have wall time only (the reference's 231 s/q is mostly
  waiting), and a CPU ratio is printed only where both sides have CPU time. Compare ratios within one
  table only; the CPU ratio is the sturdiest time figure. The plan ran over several sessions on more
  than one 2-core machine, and CPUs here differ up to 2× in speed: the rows written after 2026-11-25 02:20
  ran on an AMD EPYC with AVX-512 (self-consistency on the 0.5B at the same batch of 32: 42 s a question
  there, 81 s on the machine before). Newer rows record their machine (field `machine`); older ones are
  assigned theirs by when they were written (`MACHINES_BEFORE_RECORDING` in `docs/make_results.py`), and a
  time ratio pairs only rows of one machine, its n saying how many (none: no time ratio). Tokens do not
  depend on the machine.
"""


def _verdict(entry: dict[str, Any]) -> str:
    rest = entry.get("restoration") or {}
    gained, lost, p = rest.get("gained", 0), rest.get("lost", 0), rest.get("sign_test_p", 1.0)
    n = rest.get("n", 0)
    if not n:
        return "no paired questions yet"
    if gained == lost == 0:
        return f"no difference on the {n} paired questions"
    if p < 0.05:
        word = "helps" if gained > lost else "hurts"
        return f"**{word}** (gained {gained}, lost {lost} of {n}; sign test p = {p:.3f})"
    if gained == lost or p >= 0.5:  # the same rule as for the cost of quantization
        return f"no clear difference (gained {gained}, lost {lost} of {n}; p = {p:.2f})"
    lean = "helping" if gained > lost else "hurting"
    return f"leans towards {lean}, not significant yet (gained {gained}, lost {lost} of {n}; p = {p:.2f})"


def _label(e: dict[str, Any]) -> str:
    """`quant` + method, with the policy's short name for orchestrated runs."""
    if e["method"] == "orchestrated":
        return f"`{e['quant']}` + orchestrator (`{Path(e['policy']).stem}`)"
    return f"`{e['quant']}` + {e['method']}"


def _superseded_in(folder: Path, config: str) -> Superseded | None:
    """The fix that makes rows of ``config`` in ``folder`` stale, if a stage of the plan reruns them."""
    for st in PLAN:
        if isinstance(st, Stage) and st.out == folder and st.superseded and config in st.configs:
            return st.superseded
    return None


def _is_current(row: dict[str, Any], folder: Path) -> bool:
    gone = _superseded_in(folder, row["config"])
    return gone is None or not _stale(row, gone.before)


def _stale_left(config: str, folder: Path) -> Superseded | None:
    """The fix whose planned rerun has not yet replaced some of ``config``'s rows in ``folder``."""
    if any(r["config"] == config and not _is_current(r, folder) for r in results_in(folder).values()):
        return _superseded_in(folder, config)
    return None


def _row_note(e: dict[str, Any], folder: Path, *, short: bool = False) -> str:
    """Why some of a configuration's rows are not to be taken at face value (a planned rerun supersedes them);
    ``short`` points back to the full note, given where the configuration's findings are."""
    gone = _superseded_in(folder, e["config"]) if e.get("superseded") else None  # set by folder_summary
    if not gone:
        return ""
    return " (**note**: rows to be rerun, see the note above)" if short else f" (**note**: {gone.why})"


def _agreement(e: dict[str, Any]) -> str:
    """For self-consistency: how often its chains agreed at all, and how right the vote was with and without
    agreement (why a vote over a few chains of a weak model buys little)."""
    a = e.get("agreement")
    if not a or not a["n"]:
        return ""
    return (
        f"; two or more chains agreed on {a['agreed']} of {a['n']} questions ({a['agreed_correct']} of them right), "
        f"no two agreed on {a['split']} ({a['split_correct']} right)"
    )


def _attribution(rest: dict[str, Any]) -> str:
    """What fired on the questions an orchestrated run gained and lost ("none": batch numerics alone)."""
    parts = []
    for side in ("gained", "lost"):
        fired = rest.get(f"{side}_with") or {}
        if fired:
            parts.append(f"{side} with " + ", ".join(f"{k} {v}" for k, v in fired.items()))
    return "".join(f"; {part}" for part in parts)


def findings(stage: Stage, summary: dict[str, Any]) -> list[str]:
    """One line per method run on a quantized model: what it did against plain greedy on that model."""
    from orchestrator.eval_report import cost_text, restoration_text

    lines = []
    for e in summary["configs"]:
        if e["quant"] == "none" or e["method"] == "plain" or not e["n"]:
            continue
        rest = e.get("restoration") or {}
        acc = rest.get("accuracy") or {}
        pair = (
            f"on the {rest['n']} shared questions accuracy {100 * acc['quantized']:.0f}% (plain) → "
            f"{100 * acc['method']:.0f}% (with it), reference {100 * acc['reference']:.0f}%"
            if acc
            else "no shared questions yet"
        )
        fid = rest.get("fidelity") or {}
        paired_fid = (
            f"fidelity on the same questions {100 * fid['quantized']:.0f}% (plain) → {100 * fid['method']:.0f}% "
            f"(with it); "
            if fid
            else ""
        )
        lines.append(
            f"- {_label(e)}: {_verdict(e)}{_attribution(rest)}{_agreement(e)}; {pair}; {paired_fid}restoration on accuracy "
            f"{restoration_text(e, 'accuracy')}, on fidelity {restoration_text(e, 'fidelity')}; cost "
            f"{cost_text(e)}{_row_note(e, stage.out)}."
        )
    return lines


def _quantization_verdict(e: dict[str, Any]) -> str:
    """Accuracy at full precision → quantized plain greedy, paired, with how sure the difference is."""
    qc = e["quantization_cost"]
    gained, lost, p, n = qc["gained"], qc["lost"], qc["sign_test_p"], qc["n"]
    pair = f"{100 * qc['reference']:.0f}% → {100 * qc['quantized']:.0f}% (n = {n}; lost {lost}, gained {gained}"
    if lost > gained and p < 0.05:
        return f"{pair}; sign test p = {p:.3f}): **costs accuracy**"
    if lost > gained and p < 0.5:
        return f"{pair}; p = {p:.2f}): leans towards a loss, not significant at this n"
    fid = e.get("fidelity") or {}
    changed = (
        f" ({fid['n'] - fid['k']} of {fid['n']} final answers differ from the reference's)" if fid.get("n") else ""
    )
    if gained > lost and p < 0.05:
        return f"{pair}; sign test p = {p:.3f}): the quantized model scores **higher** here{changed}"
    return f"{pair}; p = {p:.2f}): no measurable accuracy cost at this n{changed}"


def headline(sections: list[tuple[Stage, dict[str, Any]]]) -> list[str]:
    """What quantization costs, then where the orchestrator helps and where it does not, paired per question."""
    from orchestrator.eval_stats import sign_test

    costs, lines, tests = [], [], []
    for stage, summary in sections:
        for e in summary["configs"]:
            if e.get("quantization_cost") and e["quantization_cost"]["n"]:
                costs.append(f"- {stage.suite}, {stage.model}, `{e['quant']}`: {_quantization_verdict(e)}.")
            if e["method"] != "orchestrated" or not e["n"]:
                continue
            rest = e.get("restoration") or {}
            if rest.get("gained") or rest.get("lost"):
                tests.append(rest["sign_test_p"])
            acc = rest.get("accuracy") or {}
            scores = (
                f"{100 * acc['quantized']:.0f}% → {100 * acc['method']:.0f}% (reference {100 * acc['reference']:.0f}%); "
                if acc
                else ""
            )
            tok = (e.get("cost") or {}).get("tokens_ratio")
            pair = _strict_against_plain(stage, e["config"])
            strictly = (
                f"; scored strictly, gained {len(pair[3])}, lost {len(pair[4])} (p = {sign_test(len(pair[3]), len(pair[4])):.2f})"
                if pair is not None and pair[2]
                else ""
            )
            lines.append(
                f"- {stage.suite}, {stage.model}, {_label(e)}: {scores}{_verdict(e)}{_attribution(rest)}{strictly}"
                + (f"; {tok:.2f}× the tokens" if tok else "")
                + _row_note(e, stage.out)
                + "."
            )
    return [
        "What quantization costs plain greedy (full precision → quantized, same questions):\n",
        *(costs or ["- no quantized plain run has finished a question yet."]),
        "",
        "What the orchestrator buys back, against plain greedy on the same quantized model (policy `arithmetic`; "
        "`verify_only` is its checkers alone, `arithmetic-calibrated-*` re-samples less, with a calibrated threshold, "
        "`arithmetic-profiled-*` escalates to a profile's layers):\n",
        *(lines or ["- no orchestrated configuration has finished a question yet."]),
        *([f"\n{many_tests(tests)}"] if len(tests) > 1 else []),
    ]


def many_tests(p_values: list[float], alpha: float = 0.05) -> str:
    """How much one small p means among several: the chance of a false "helps" somewhere, and what survives
    Holm's correction (the k-th smallest of m p-values tested against alpha / (m - k + 1), up to the first miss)."""
    m = len(p_values)
    kept = 0
    for k, p in enumerate(sorted(p_values)):
        if p >= alpha / (m - k):
            break
        kept += 1
    chance = 1 - (1 - alpha) ** m
    text = (
        f"These lines hold {m} sign tests at 5% each: were no configuration to change anything, up to {chance:.0%} "
        f"of the time at least one would still come out significant (the tests taken as independent). "
        f"Holm's correction over the {m}, which asks p < 0.05 / {m} = {alpha / m:.4f} of the smallest, "
    )
    if kept:
        return text + f"keeps {kept} of them: {'that one holds' if kept == 1 else 'those hold'} with the correction."
    if min(p_values) < alpha:
        return text + "keeps none: a p below 0.05 here is a lead to confirm on more questions, not a proof."
    return text + "has nothing to keep: none reaches 5% on its own."


def _won_back(rest: dict[str, Any]) -> str:
    lost = rest.get("lost_to_quantization", 0)
    if not lost:
        return "quantizing lost none of these questions"
    noun = "question" if lost == 1 else "questions"
    return f"of the {lost} {noun} quantizing lost it won back {rest.get('recovered', 0)}"


def standing(sections: list[tuple[Stage, dict[str, Any]]]) -> list[str]:
    """This project's restoration and cost beside the study's (65 - 45) / (70 - 45) = 0.8 for +20-30% time:
    the ratio, the paired view of it (questions lost to quantization and won back), and time against time."""
    lines = []
    for stage, summary in sections:
        for e in summary["configs"]:
            rest = e.get("restoration") or {}
            acc = rest.get("accuracy") or {}
            if e["method"] != "orchestrated" or not acc:
                continue
            if acc["value"] is None:
                value = "undefined (the reference does not score above the quantized model here)"
            else:
                value = f"{acc['value']:+.2f} (the gap itself: sign test p = {rest['gap_sign_test_p']:.2f})"
            cost = e.get("cost") or {}
            if cost.get("cpu_ratio") and cost.get("cpu_n") == cost.get("n"):
                time_text = f"; {cost['cpu_ratio']:.2f}× the CPU time"
            elif cost.get("seconds_ratio") and cost.get("seconds_n", cost.get("n")) == cost.get("n"):
                time_text = f"; {cost['seconds_ratio']:.2f}× the wall time"
            else:
                time_text = ""
            tok = cost.get("tokens_ratio")
            if tok and time_text:
                cost_text = f"{time_text} of plain greedy on the quantized model ({tok:.2f}× the tokens)"
            elif tok:
                timed = cost.get("seconds_n") or 0
                why = f"only {timed} of {cost.get('n')} questions" if timed else "no question"
                cost_text = (
                    f"; {tok:.2f}× the tokens of plain greedy on the quantized model (no time ratio: {why} "
                    "timed on the same machine on both sides)"
                )
            else:
                cost_text = ""
            lines.append(
                f"- {stage.suite}, {stage.model}, {_label(e)}: accuracy {100 * acc['quantized']:.0f}% → "
                f"{100 * acc['method']:.0f}% against {100 * acc['reference']:.0f}% at full precision "
                f"(n = {rest['n']}): restoration {value}; {_won_back(rest)}"
                + cost_text
                + _row_note(e, stage.out, short=True)
                + "."
            )
    return lines


RULES = ("prefer_chain", "prefer_supported", "prefer_stated")


def final_rule_section(sections: list[tuple[Stage, dict[str, Any]]]) -> list[str]:
    """Every orchestrated row's stored text answered again under each ``final.on_mismatch`` rule, so the
    rule can be judged on what the model wrote rather than on a rerun (which would also change the tokens)."""
    from orchestrator.eval_data import parse_config
    from orchestrator.eval_stats import sign_test, was_cut
    from orchestrator.verdicts import replay_answer, stated_answer
    from policies import load_policy
    from verifiers import answers_match

    lines = [
        "| suite: model | configuration | n | recorded (its rule) | " + " | ".join(f"`{r}`" for r in RULES) + " |",
        "|---|---|---|---|" + "---|" * len(RULES),
    ]
    n_rows = reproduced = 0
    own_rules: set[str] = set()
    # prefer_supported against prefer_chain; right under prefer_stated alone (and whether the text stated it)
    moved: dict[str, list[str]] = {"won": [], "lost": [], "stated": [], "stated_unsaid": [], "differs": []}
    for stage, summary in sections:
        for e in summary["configs"]:
            cfg = parse_config(e["config"])
            if cfg.method != "orchestrated":
                continue
            final = load_policy(cfg.policy_name).final
            right = dict.fromkeys(RULES, 0)
            rows = _leading_rows(stage.out, e["config"])
            for index, row in rows.items():
                replay = functools.partial(
                    replay_answer, row["text"], strategies=final.answer_strategies, cut=was_cut(row)
                )
                got = {}
                for rule in RULES:
                    answer, _ = replay(on_mismatch=rule)
                    got[rule] = answer is not None and answers_match(answer, str(row["gold"])) is True
                    right[rule] += got[rule]
                n_rows += 1
                where = f"{stage.suite} {stage.model} {_label(e)} q{index + 1}"
                own = replay(on_mismatch=final.on_mismatch)
                if own == (row["answer"], row.get("resolution")):
                    reproduced += 1
                else:
                    own_right = own[0] is not None and answers_match(own[0], str(row["gold"])) is True
                    moved["differs"].append(where + (" (**scored otherwise**)" if own_right != row["correct"] else ""))
                if got["prefer_supported"] != got["prefer_chain"]:
                    moved["won" if got["prefer_supported"] else "lost"].append(where)
                if got["prefer_stated"] and not got["prefer_supported"]:
                    moved["stated"].append(where)
                    if not stated_answer(row["text"], final.answer_strategies)[1]:
                        moved["stated_unsaid"].append(where)
            if rows:
                own_rules.add(final.on_mismatch)
                recorded = sum(bool(r["correct"]) for r in rows.values())
                lines.append(
                    f"| {stage.suite}: {stage.model} | {_label(e)} | {len(rows)} | {recorded} "
                    f"(`{final.on_mismatch}`) | " + " | ".join(str(right[r]) for r in RULES) + " |"
                )
    if n_rows == 0:
        return ["No orchestrated rows yet."]
    won, lost, alone, unsaid = moved["won"], moved["lost"], moved["stated"], moved["stated_unsaid"]
    ran = ", ".join(f"`{r}`" for r in sorted(own_rules))
    return [
        "The orchestrator answers with the stated answer unless it differs from the last value a checker "
        "checked in the chain; the policy's `final.on_mismatch` then decides. These rows ran under "
        f"{ran}. Each row's stored text is answered again below under each rule, its checked values found by "
        "running the arithmetic checker over each line as written (corrections applied; an answer cut at the "
        "budget leaves its last word unjudged, as the solve did): under the row's own rule the replay gives "
        f"its recorded answer and resolution on {reproduced} of {n_rows} rows"
        + (
            f"; not on {', '.join(moved['differs'])} (the solve judged steps, which can end inside a line, and "
            "the code of the day may read a claim otherwise than the code that wrote the row: since 2026-11-25 "
            "a result written as an expression counts as its value: `\\frac{1}{24}` no longer as 24, "
            '"6 + 4" no longer as 4)'
            if moved["differs"]
            else ""
        )
        + '. `prefer_supported` keeps an answer the text states (`\\boxed{}`, "the answer is", '
        '"#### N") that some checked step computed, in its written or exact form, and takes the chain\'s '
        "value otherwise.\n",
        *lines,
        "",
        f"Against `prefer_chain`, `prefer_supported` wins {len(won)} question{'s' * (len(won) != 1)} and loses "
        f"{len(lost)} (sign test p = {sign_test(len(won), len(lost)):.2f})"
        + (f": won {', '.join(won)}" if won else "")
        + (f"; lost {', '.join(lost)}" if lost else "")
        + ". `prefer_stated` never looks at the chain; it alone is right on "
        + (", ".join(alone) or "no question")
        + (
            f" ({len(unsaid)} of them stating no answer: the last number of the text, cut at the budget, "
            "happened to equal the gold answer)"
            if unsaid
            else ""
        )
        + ". The `word_problems` policy uses `prefer_supported`; `arithmetic` keeps `prefer_chain` until the "
        "plan's stages that extend it are done, since a policy edit makes a run refuse to resume the rows made "
        "under the old one.\n",
    ]


def _strict_marks(stage: Stage, config: str) -> dict[int, tuple[bool, bool]] | None:
    """A configuration's leading rows scored strictly (see ``orchestrator.eval_strict``), by question."""
    from orchestrator.eval_data import parse_config
    from orchestrator.eval_strict import strict_marks

    rows = _leading_rows(stage.out, config)
    return strict_marks(rows, parse_config(config)) if rows else None


def _strict_against_plain(stage: Stage, config: str) -> tuple[int, int, int, list[int], list[int]] | None:
    """Scored strictly, an orchestrated or self-consistency configuration against plain greedy on the same
    weights, on the questions both answered: (plain right, its right, questions, gained, lost)."""
    from orchestrator.eval_data import parse_config
    from orchestrator.eval_stats import discordant

    cfg = parse_config(config)
    mine, base = _strict_marks(stage, config), _strict_marks(stage, f"{cfg.model}:{cfg.quant}:plain")
    if cfg.method == "plain" or not mine or not base:
        return None
    shared = sorted(set(mine) & set(base))
    as_rows = [{q: {"correct": marks[q][0]} for q in shared} for marks in (mine, base)]
    won, lost = discordant(as_rows[0], as_rows[1], shared)
    return sum(base[q][0] for q in shared), sum(mine[q][0] for q in shared), len(shared), won, lost


def strict_section(sections: list[tuple[Stage, dict[str, Any]]]) -> list[str]:
    """Each plain and orchestrated row scored again counting only an answer the model stated (``\\boxed{}``,
    "the answer is", "#### N"): no last-number fallback, no chain value standing in for a missing answer. The
    tables' flexible scoring reads a number out of every cut answer; this says how much of a result rests on
    that reading."""
    from orchestrator.eval_stats import sign_test

    table = [
        "| suite: model | configuration | n | flexible (the tables) | strict | stated an answer |",
        "|---|---|---|---|---|---|",
    ]
    compare = []
    for stage, summary in sections:
        for e in summary["configs"]:
            marks = _strict_marks(stage, e["config"])
            if marks is None:
                continue
            flexible = sum(bool(r["correct"]) for r in _leading_rows(stage.out, e["config"]).values())
            table.append(
                f"| {stage.suite}: {stage.model} | {_label(e)} | {len(marks)} | {flexible} | "
                f"{sum(right for right, _ in marks.values())} | {sum(stated for _, stated in marks.values())} |"
            )
            pair = _strict_against_plain(stage, e["config"])
            if pair is not None and pair[2]:
                plain, mine, n, won, lost = pair
                compare.append(
                    f"- {stage.suite}, {stage.model}, {_label(e)}, scored strictly against plain greedy on the same "
                    f"weights: {plain} → {mine} of {n}; gained {len(won)}, lost {len(lost)} "
                    f"(sign test p = {sign_test(len(won), len(lost)):.2f})."
                )
    if len(table) == 2:
        return ["No rows yet."]
    return [
        "The tables score an answer cut at the token budget by its last number, as GSM8K's flexible scoring "
        'does. Counted strictly, a row is right only when the model stated its answer (`\\boxed{}`, "the answer '
        'is", "#### N") and that answer, after the policy\'s final-answer rule for the orchestrator, equals the '
        "gold one; a cut answer with no statement counts wrong. Self-consistency votes again with the chains "
        "that state their answer; its rows written before they kept those are left out.\n",
        *table,
        "",
        *compare,
    ]


def calibration_sections() -> list[str]:
    """Per calibrated model × quantization: does the step score find wrong steps, and the thresholds chosen."""
    from orchestrator.calibrate import load_report

    parts = []
    for st in PLAN:
        if not isinstance(st, CalibrateStage) or not st.report.is_file():
            continue
        r = load_report(st.report)

        def roc(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2f}"

        wrong = round(r.wrong_claim_rate * r.n_steps)
        few = ": too few to rely on" if wrong < 10 else ""
        parts.append(
            f"- {st.model} under `{st.quant}`, policy `{r.policy}`: plain greedy on GSM8K questions "
            f"{r.offset}–{r.offset + r.n_questions - 1} (not evaluated), {r.n_steps} steps, accuracy "
            f"{r.accuracy:.0%}. {r.wrong_claim_rate:.1%} of steps ({wrong} of "
            f"{r.n_steps}) hold a wrong arithmetic claim. AUROC of the step score: {roc(r.auroc_wrong_claim)} for a "
            f"wrong claim (on {wrong} such steps{few}), {roc(r.auroc_wrong_answer)} for a step of a wrongly answered "
            f"question (the steps of {round((1 - r.accuracy) * r.n_questions)} of {r.n_questions} questions; 0.5 = "
            f"no signal). The policy's accept_threshold {r.current_threshold:.2f} "
            f"re-samples {r.current_rate:.0%} of these steps; {r.accept_threshold:.3f} re-samples "
            f"{r.achieved_rate or 0:.0%} (target {r.target_rate:.0%}; `{calibrated_policy(st.model, st.quant)}`). "
            f"`{st.report.relative_to(ROOT)}`"
        )
    return parts or ["- no calibration has finished yet."]


def layer_sections() -> list[str]:
    """Per profiled model × quantization: the profile, layer choices on held-out text, and end to end."""
    from orchestrator.profile import load_profile

    parts = _layer_summary()
    for st in PLAN:
        if not isinstance(st, ProfileStage) or not st.profile.is_file():
            continue
        prof = load_profile(st.profile)
        classes = ", ".join(
            f"{name} {c.top1_flip_rate:.1%} of {c.tokens}" for name, c in prof.classes.items() if c.tokens
        )
        parts += [
            f"### {st.model} under `{st.quant}`\n",
            f"Profile `{st.profile.relative_to(ROOT)}`: {prof.n_texts} synthetic texts, {prof.n_tokens} predicted "
            f"tokens, {prof.seconds / 60:.0f} min. Fully quantized: KL {prof.full_kl:.4f}, top-1 agreement "
            f"{prof.top1_agreement:.1%}; top-1 flips by class of the predicted token: {classes}. Most worth "
            f"restoring alone: layers {', '.join(map(str, prof.top_layers(6)))}.\n",
            f"![per-layer sensitivity]({st.profile.with_suffix('.png').relative_to(DOCS)})\n",
        ]
        if st.layers_report.is_file():
            parts += [_layer_table(st.layers_report), ""]
        parts += _end_to_end(st)
    return parts or ["No profile has finished yet.\n"]


def _layer_summary() -> list[str]:
    """One line per profiled model × quantization: the profile's most-worth-restoring layers against the
    default middle quarter at equal memory, over all tokens and over number tokens."""
    from orchestrator.layer_compare import LayerChoiceReport

    lines = []
    for st in PLAN:
        if not isinstance(st, ProfileStage) or not st.layers_report.is_file():
            continue
        choices = {c.name: c for c in LayerChoiceReport.read(st.layers_report).choices}
        default = choices.get(f"default {DEFAULT_LAYERS}")
        if default is None:
            continue
        same_memory = (c for c in choices.values() if c.bytes == default.bytes and c.name.endswith("to restore"))
        profile = next(same_memory, None)
        if profile is None or "number" not in profile.classes or "number" not in default.classes:
            continue
        lines.append(
            f"| {st.model} | `{st.quant}` | {len(profile.layers)} | {profile.recovered:.1%} | "
            f"{default.recovered:.1%} | {profile.classes['number'].kl:.3f} | {default.classes['number'].kl:.3f} |"
        )
    if not lines:
        return []
    return [
        "At equal memory, the layers a profile finds most worth restoring against the default middle quarter "
        f"(`{DEFAULT_LAYERS}`), teacher-forced on held-out GSM8K answers (tables below): share of the quantized "
        "model's KL to the reference removed, and the KL left on number tokens (lower is better).\n",
        "| model | quantization | layers | KL removed: profile | KL removed: default | number-token KL: profile "
        "| number-token KL: default |",
        "|---|---|---:|---:|---:|---:|---:|",
        *lines,
        "",
    ]


def _layer_table(path: Path) -> str:
    from orchestrator.layer_compare import LayerChoiceReport

    report = LayerChoiceReport.read(path)
    return (
        f"Layer choices on {report.n_texts} GSM8K questions with their worked answers (text the profile did not see: "
        f"it was measured on the synthetic suite), teacher-forced "
        f"(`{path.relative_to(ROOT)}`): the quantized model with each set of layers restored, against the "
        "reference.\n\n" + report.table()
    )


def _leading_rows(folder: Path, config: str) -> dict[int, dict[str, Any]]:
    """A configuration's rows by question as its table counts them (within the plan's widest limit for the
    folder, leading: see ``finished_prefix``), less those a planned rerun supersedes (the table shows them,
    marked "to be rerun"; a comparison built on them would carry the fault the rerun removes)."""
    from orchestrator.eval_stats import finished_prefix

    limit = targets()[folder][2]
    rows = {
        q: r
        for (c, q), r in results_in(folder).items()
        if c == config and r["index"] < limit and _is_current(r, folder)
    }
    return {r["index"]: r for r in finished_prefix(rows).values()}


def _end_to_end(st: ProfileStage) -> list[str]:
    """The orchestrator with the profile's layers against the default layers, paired on GSM8K questions."""
    from orchestrator.eval_stats import gained_lost, sign_test

    profiled_id = f"{st.model}:{st.quant}:orchestrated:{profiled_policy(st.model, st.quant)}"
    if not any(isinstance(s, Stage) and profiled_id in s.configs for s in PLAN):
        return []  # the plan measures this profile's layers on held-out text only
    folder = RESULTS / f"gsm8k-{st.model.split('-')[-1]}"
    if not results_in(folder):
        return []
    default = _leading_rows(folder, f"{st.model}:{st.quant}:orchestrated:{POLICY}")
    profiled = _leading_rows(folder, profiled_id)
    shared = sorted(set(default) & set(profiled))
    if not shared:
        return [f"End to end: `{profiled_id}` has not run yet.\n"]
    a = sum(bool(default[i]["correct"]) for i in shared)
    b = sum(bool(profiled[i]["correct"]) for i in shared)
    gained, lost = gained_lost(profiled, default, shared)
    esc_a = sum(int(default[i].get("escalations") or 0) for i in shared)
    esc_b = sum(int(profiled[i].get("escalations") or 0) for i in shared)
    return [
        f"End to end on the same {len(shared)} GSM8K questions, orchestrated with policy `{POLICY}`: default layers "
        f"{a}/{len(shared)} correct, the profile's layers {b}/{len(shared)} (gained {gained}, lost {lost}; sign "
        f"test p = {sign_test(gained, lost):.2f}). Escalation fired {esc_a} times with the default layers and "
        f"{esc_b} with the profile's, so the layer choice can only matter on the few questions where it fired.\n"
    ]


TIER_NAMES = {1: "1 operation", 2: "2 operations", 3: "3 steps, a fraction, % or rate", 4: "4–5 operations"}


def tier_table(stage: Stage, summary: dict[str, Any]) -> list[str]:
    """Accuracy per difficulty tier of the synthetic suite: where along the chain length quantization bites.
    The rows are those the summary's figures use (each configuration's leading finished questions)."""
    import json

    from orchestrator.eval_stats import finished_prefix, was_cut

    tiers = {}
    for line in SYNTH_FILE.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        tiers[record["id"]] = int(record["tier"])
    by_config: dict[str, dict[str, dict[str, Any]]] = {}
    for (config, question), r in results_in(stage.out).items():
        if question in tiers and r["index"] < summary["n_questions"]:
            by_config.setdefault(config, {})[question] = r
    rows = [(tiers[q], r) for mine in by_config.values() for q, r in finished_prefix(mine).items()]
    names = sorted(set(TIER_NAMES) & {t for t, _ in rows})
    lines = [
        "Correct answers by tier of the synthetic suite (k/n; answers cut at the token budget in brackets):\n",
        "| configuration | " + " | ".join(f"tier {t}: {TIER_NAMES[t]}" for t in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for e in summary["configs"]:
        mine = [(t, r) for t, r in rows if r["config"] == e["config"]]
        if not mine:
            continue
        cells = []
        for t in names:
            got = [r for tt, r in mine if tt == t]
            cut = sum(1 for r in got if was_cut(r))
            cell = f"{sum(1 for r in got if r.get('correct'))}/{len(got)}" if got else "–"
            cells.append(cell + (f" ({cut} cut)" if cut else ""))
        lines.append(f"| `{e['config']}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _seconds_per_question(folder: Path, config: str) -> float | None:
    """Wall seconds per question of ``config`` in ``folder`` at the recorded rates; None if nothing there timed it.

    Batch size moves the rate most (the first stages ran 8 plain questions a batch, the plan now 32), so rows
    run at least half as wide as the plan runs them now come first, the configuration's own before those of
    its model and method (a policy or quantization changes the cost less); then rows of any width."""
    from orchestrator.eval_data import parse_config

    want = parse_config(config)
    wide = (SOLVES if want.method == "orchestrated" else PLAIN_BATCH) / 2
    rows = [r for r in results_in(folder).values() if r.get("seconds") is not None]  # stale rows timed it too
    parsed = {c: parse_config(c) for c in {r["config"] for r in rows}}
    for at_width in (True, False):
        for same in (
            lambda c: c.id == want.id,
            lambda c: (c.model, c.method_label) == (want.model, want.method_label),
        ):
            times = [
                float(r["seconds"])
                for r in rows
                if same(parsed[r["config"]]) and (not at_width or int(r.get("batch") or 0) >= wide)
            ]
            if times:
                return sum(times) / len(times)
    return None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{max(1, round(seconds / 60))} min"


def _time_left(st: Stage, counted: set[tuple[Path, str, int]]) -> tuple[int, float, bool]:
    """Rows ``st`` has yet to write that no earlier stage writes (added to ``counted``), their wall seconds at
    the recorded rates, and whether every configuration among them has a rate."""
    # a stage resumes past every row there; only the stage that sets stale rows aside reruns them
    have = {(c, r["index"]) for (c, _), r in results_in(st.out).items() if not st.superseded or _is_current(r, st.out)}
    n_todo, seconds, known = 0, 0.0, True
    for config in st.configs:
        todo = [i for i in range(st.limit) if (config, i) not in have and (st.out, config, i) not in counted]
        if not todo:
            continue
        counted.update((st.out, config, i) for i in todo)
        n_todo += len(todo)
        rate = _seconds_per_question(st.out, config)
        if rate is None:
            known = False
        else:
            seconds += rate * len(todo)
    return n_todo, seconds, known


def plan_status() -> list[str]:
    """The plan, stage by stage, with how far each has got (rows written / rows planned; files present) and
    the wall time its unwritten rows would take at the rates recorded so far (a row two stages plan counts
    in the first)."""
    lines = ["| stage | what | status | time left (est.) |", "|---|---|---|---|"]
    counted: set[tuple[Path, str, int]] = set()
    total, untimed = 0.0, []
    for st in PLAN:
        left = "–"
        if isinstance(st, Stage):
            rows = results_in(st.out)
            written = sum(
                1 for (c, _), r in rows.items() if c in st.configs and r["index"] < st.limit and _is_current(r, st.out)
            )
            planned = len(st.configs) * st.limit
            n = len(st.configs)
            what = f"{st.suite}, {st.model}: {n} configuration{'s' if n > 1 else ''} × {st.limit} questions"
            status = "done" if written >= planned else f"{written}/{planned} rows"
            n_todo, seconds, known = _time_left(st, counted)
            total += seconds
            if written < planned and not n_todo:
                status += " (the others stale: a later stage reruns them)"
            elif n_todo:
                left = f"≈ {_hours(seconds)}" if known else f"≥ {_hours(seconds)}" if seconds else "?"
                if not known:
                    untimed.append(st.name)
        elif isinstance(st, ProfileStage):
            what = f"profile of {st.model} under `{st.quant}`, layer choices compared"
            status = "done" if st.profile.is_file() and st.layers_report.is_file() else "to do"
        else:
            what = f"thresholds of {st.model} under `{st.quant}` calibrated"
            status = "done" if st.report.is_file() else "to do"
        lines.append(f"| `{st.name}` | {what} | {status} | {left} |")
    if total:
        lines += [
            "",
            f"What is left comes to about {_hours(total)} of wall time at the rates recorded here, on this shared "
            "2-core CPU (rows run in batches about as wide as the plan's count first; a configuration not yet run "
            "is estimated from those of its model and method in the same folder"
            + (
                f"; not counted: configurations no row has timed yet, in {', '.join(f'`{n}`' for n in untimed)}"
                if untimed
                else ""
            )
            + ").",
        ]
    return lines


def render(sections: list[tuple[Stage, dict[str, Any]]]) -> str:
    """docs/results.md from the folder summaries: whatever is finished, with n and status everywhere."""
    from orchestrator.eval_report import markdown_table

    # rows a planned rerun supersedes are not done
    done = sum(1 for _, s in sections for e in s["configs"] if e["complete"] and not e["superseded"])
    total = sum(len(c) for _, c, _ in targets().values())
    parts = [
        "# Results: does the orchestrator restore what quantization takes away?\n",
        f"Rebuilt {time.strftime('%Y-%m-%d %H:%M')} by `python docs/make_results.py --report-only` from the "
        f"per-question results in `docs/results/`; {done} of {total} planned configurations are complete "
        "(the others show their n and whether they are *partial*, *not started* or *to be rerun*). "
        "`python docs/make_results.py --gsm8k PATH` runs or resumes the plan.\n",
        "## Where the orchestrator helps, and where it does not\n",
        *headline(sections),
        "",
        "Where this project stands against the study in the table below, whose step verification closed "
        "(65 − 45) / (70 − 45) = 0.8 of the 4-bit gap for +20–30% time. Here the gaps are a few questions, so a "
        "ratio over one means little on its own: each line gives the gap's own sign test and the questions "
        "behind it, and the time figure is CPU time where both sides recorded it, else wall time (which "
        "includes pauses):\n",
        *(standing(sections) or ["- nothing to compare yet."]),
        "",
        PUBLISHED,
    ]
    shown = {stage.out for stage, _ in sections}
    waiting = [f"{st.suite}: {st.model}" for folder, (st, _, _) in targets().items() if folder not in shown]
    if waiting:
        parts.append("Not started yet: " + "; ".join(waiting) + ".\n")
    for stage, summary in sections:
        rel = stage.out.relative_to(DOCS)
        parts += [
            f"## {stage.suite}: {stage.model}\n",
            f"{summary['data']}; {summary['n_questions']} questions planned; at most "
            f"{summary['settings']['max_tokens']} generated tokens per answer (per chain for self-consistency). "
            f"Per-question rows: `{rel}/results.jsonl`.\n",
            markdown_table(summary),
            "",
            *findings(stage, summary),
            "",
            *(tier_table(stage, summary) if stage.suite == "synthetic" else []),
            f"![accuracy against cost]({rel}/accuracy_vs_cost.png)",
            f"![fidelity by configuration]({rel}/fidelity.png)",
            "",
        ]
    parts += [
        "## Scored strictly: only answers the model stated\n",
        *strict_section(sections),
        "",
        "## The final-answer rule, replayed\n",
        *final_rule_section(sections),
        "",
        "## Confidence thresholds: `qslm calibrate`\n",
        "How often the orchestrator re-samples is set by the policy's threshold on the step score, so most of "
        "its cost is too. `qslm calibrate` scores and checks plain greedy steps and picks the threshold that "
        "re-samples a chosen share of them; `arithmetic-calibrated-*` is `arithmetic` with that threshold.\n",
        *calibration_sections(),
        "",
        "## Which layers to escalate: profiles\n",
        "`qslm profile` measured, per decoder layer, the KL to the reference when only that layer is quantized "
        "and when only that layer is restored, on synthetic calibration text. The escalation layers are then "
        "compared where they are used: several restored together, on held-out GSM8K text, at equal memory.\n",
        *layer_sections(),
    ]
    parts += [
        "## The plan\n",
        "`docs/make_results.py` runs these stages in order (the core comparisons first, then wider ones); a "
        "rerun skips what is done and resumes the rest. Rows planned are configurations × questions.\n",
        *plan_status(),
        "",
        CAVEATS,
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gsm8k", type=Path, help="GSM8K JSONL (question / answer '#### N')")
    parser.add_argument("--report-only", action="store_true", help="rebuild docs/results.md from docs/results/")
    parser.add_argument("--stage", default=None, help="run this stage only (in this process)")
    parser.add_argument("--only", default=None, help="run only this stage (child process), then report")
    parser.add_argument("--device", default="auto")
    # orchestrated solves at once: 16 ran 1.29x the tokens per second of 8 on the 0.5B, the same answers
    # (docs/benchmarks/bench_concurrent_0.5b_sim-nf4.json); the first stages ran 8 (each row records its batch).
    # 16 1.5B solves once grew past this machine's 24 GB (killed after ~35 min) while glibc kept a heap per solve
    # thread; with two arenas (run_all's MALLOC_ARENA_MAX) 8 held a flat 8.5-9.3 GB for hours.
    parser.add_argument("--batch", type=int, default=SOLVES, help=f"orchestrated solves at once (default {SOLVES})")
    args = parser.parse_args(argv)
    if args.gsm8k is not None:
        args.gsm8k = args.gsm8k.resolve()
    os.chdir(ROOT)  # configurations name policy files relative to the repository
    if not args.report_only and (args.gsm8k is None or not args.gsm8k.is_file()):
        parser.error("--gsm8k PATH (an existing GSM8K JSONL file) is needed to run the plan")
    stage = next((s for s in PLAN if s.name == args.stage), None)
    if args.stage and stage is None:
        parser.error(f"unknown stage {args.stage!r}; stages: {', '.join(s.name for s in PLAN)}")
    from orchestrator.errors import QslmError

    gsm8k = cast(Path, args.gsm8k)  # checked above unless only the report is rebuilt
    try:
        if args.report_only:
            print(f"wrote {write_report()}", flush=True)
        elif stage is not None:
            run_stage(stage, gsm8k, args.device, args.batch)
        else:
            return run_all(gsm8k, args.device, args.batch, args.only)
    except QslmError as exc:  # a results file that is not ours, a rerun with other settings: said, not traced
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
