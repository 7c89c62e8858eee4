"""Reports of an evaluation: the JSON summary, a Markdown table and two PNG plots.

Everything here reads the summary built by :func:`orchestrator.evaluate.build_summary`; nothing
touches a model. matplotlib is imported only to draw (the ``plots`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"
TABLE_FILE = "results.md"
COST_PLOT = "accuracy_vs_cost.png"
FIDELITY_PLOT = "fidelity.png"


def config_label(config: str) -> str:
    """A configuration as people read it: a policy given as a file shows as its name.

    >>> config_label("m:sim-nf4:orchestrated:docs/policies/strict.yaml")
    'm:sim-nf4:orchestrated:strict'
    """
    parts = config.split(":", 3)
    if len(parts) == 4 and parts[3].endswith((".yaml", ".yml")):
        parts[3] = parts[3].replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return ":".join(parts)


def pct(rate: dict[str, Any] | None) -> str:
    """``45.0% [33.1–57.5]`` from a rate entry (k, n, rate, ci95); a dash when there is nothing.

    >>> pct({"k": 9, "n": 20, "rate": 0.45, "ci95": [0.2582, 0.6579]})
    '45.0% [25.8–65.8] (9/20)'
    """
    if not rate or not rate.get("n"):
        return "–"
    lo, hi = rate["ci95"]
    return f"{100 * rate['rate']:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}] ({rate['k']}/{rate['n']})"


def restoration_text(entry: dict[str, Any], key: str) -> str:
    """Restoration on ``key`` ('accuracy' or 'fidelity') with its n, or why it is undefined."""
    rest = entry.get("restoration")
    if not rest:
        return "–"
    part = rest.get(key)
    if part is None:
        return f"– (n={rest.get('n', 0)})"
    if part["value"] is None:
        return f"undefined: ref ≤ quant (n={rest['n']})"
    return f"{part['value']:+.2f} (n={rest['n']})"


def cost_text(entry: dict[str, Any]) -> str:
    cost = entry.get("cost")
    if not cost or not cost.get("n"):
        return "1×" if entry.get("baseline") == entry["config"] and entry["n"] else "–"
    # each ratio with the questions it rests on; neighbours resting on as many share one "(n=...)"
    n = cost["n"]
    parts = [
        (f"{cost[key]:.2f}× {name}", cost.get(n_key, n))  # summaries from before seconds_n: all n
        for key, name, n_key in (
            ("tokens_ratio", "tok", "n"),
            ("seconds_ratio", "time", "seconds_n"),
            ("cpu_ratio", "CPU", "cpu_n"),
        )
        if cost.get(key) is not None
    ]
    groups: list[tuple[list[str], int]] = []
    for text, k in parts:
        if groups and groups[-1][1] == k:
            groups[-1][0].append(text)
        else:
            groups.append(([text], k))
    return "; ".join(f"{', '.join(texts)} (n={k})" for texts, k in groups) or f"– (n={n})"


def status_text(entry: dict[str, Any]) -> str:
    """Done, partial or not started, with how many rows are written and how many the figures use; an entry
    marked ``superseded`` (rows a planned rerun replaces) is never called done."""
    if entry.get("expected") is None:
        return str(entry["n"])
    if entry.get("superseded"):
        return f"to be rerun: rows predate a fix ({entry.get('done', entry['n'])}/{entry['expected']} written)"
    if entry["complete"]:
        return "done"
    done = entry.get("done", entry["n"])
    shown = f"; figures on the first {entry['n']}" if done != entry["n"] else ""
    return f"{'partial' if done else 'not started'} ({done}/{entry['expected']}{shown})"


def markdown_table(summary: dict[str, Any]) -> str:
    """One row per configuration: accuracy and fidelity with their intervals, restoration, cost, interventions."""
    head = (
        "configuration",
        "n",
        "accuracy [95% CI]",
        "strict",
        "fidelity to reference [95% CI]",
        "restoration (acc)",
        "restoration (fid)",
        "tokens/q",
        "cut at budget",
        "s/q wall (CPU)",
        "cost vs plain greedy",
        "interventions",
        "status",
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary["configs"]:
        fired = ", ".join(f"{k} {v}" for k, v in e["interventions"].items()) or "–"
        fid = "(reference)" if e.get("reference") == e["config"] else pct(e.get("fidelity"))
        cells = (
            f"`{config_label(e['config'])}`",
            str(e["n"]),
            pct(e["accuracy"]),
            f"{e['strict']['k']}/{e['strict']['n']}" if e.get("strict") else "–",
            fid,
            restoration_text(e, "accuracy"),
            restoration_text(e, "fidelity"),
            f"{e['tokens_mean']:.0f}" if e["tokens_mean"] is not None else "–",
            f"{e.get('cut', 0)}/{e['n']}" if e["n"] else "–",
            _seconds(e),
            cost_text(e),
            fired,
            status_text(e),
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seconds(entry: dict[str, Any]) -> str:
    if entry["seconds_mean"] is None:
        return "–"
    cpu = entry.get("cpu_seconds_mean")
    return f"{entry['seconds_mean']:.1f}" + (f" ({cpu:.1f})" if cpu is not None else "")


def write_reports(summary: dict[str, Any], out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write summary.json, results.md and (with matplotlib installed) the two plots; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / SUMMARY_FILE, out / TABLE_FILE]
    paths[0].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    settings = summary.get("settings", {})
    intro = (
        f"Questions: `{summary['data']}` (n = {summary['n_questions']}); settings: "
        + ", ".join(f"{k} {v}" for k, v in settings.items())
        + ". Intervals are Wilson 95%. Accuracy reads an answer with no statement by its last number; strict "
        "counts only answers the text states (boxed, 'the answer is', '####'; self-consistency votes with "
        "the chains that state one). "
        "Fidelity: answer agreement with the reference (plain greedy at quant "
        "none), paired per question. Restoration: (method − quantized) / (reference − quantized) on the "
        "questions all three answered.\n\n"
    )
    paths[1].write_text(intro + markdown_table(summary) + "\n", encoding="utf-8")
    if plots:
        paths += plot_accuracy_vs_cost(summary, out / COST_PLOT), plot_fidelity(summary, out / FIDELITY_PLOT)
    return paths


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is in the plots and test extras
        raise ImportError("plots need matplotlib: pip install 'quantized-slm[plots]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _err(rate: float, lo: float, hi: float) -> list[list[float]]:
    """Error-bar lengths below and above ``rate`` (never negative: rounding can put a bound past the rate)."""
    return [[max(0.0, rate - lo)], [max(0.0, hi - rate)]]


_MARKERS = {"plain": "o", "orchestrated": "s"}


def _colours(n: int) -> list[Any]:
    """``n`` distinguishable colours: matplotlib's ten, or twenty paired shades past ten configurations."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def short_labels(entries: list[dict[str, Any]]) -> tuple[list[str], str]:
    """Labels for a plot's configurations and the title suffix: a model shared by all moves to the title.

    >>> short_labels([{"config": "m:none:plain", "model": "m"}, {"config": "m:sim-nf4:sc4", "model": "m"}])
    (['none:plain', 'sim-nf4:sc4'], 'm')
    """
    labels = [config_label(e["config"]) for e in entries]
    models = {e["model"] for e in entries}
    if len(models) != 1:
        return labels, ""
    (model,) = models
    return [label.removeprefix(f"{model}:") for label in labels], model


def plot_accuracy_vs_cost(summary: dict[str, Any], path: Path) -> Path:
    """Accuracy (with its interval) against generated tokens per question, one point per configuration,
    each its own colour and legend entry (labels beside points overlap where configurations cost alike)."""
    plt = _pyplot()
    entries = [e for e in summary["configs"] if e["accuracy"]["n"] and e["tokens_mean"] is not None]
    labels, model = short_labels(entries)
    fig, ax = plt.subplots(figsize=(8, 4.6 + 0.22 * ((len(entries) + 1) // 2)))
    colours = _colours(len(entries))
    for i, (e, label) in enumerate(zip(entries, labels, strict=True)):
        acc = e["accuracy"]
        lo, hi = acc["ci95"]
        ax.errorbar(
            e["tokens_mean"],
            acc["rate"],
            yerr=_err(acc["rate"], lo, hi),
            fmt=_MARKERS.get(e["method"], "^"),
            color=colours[i],
            capsize=3,
            label=f"{label} (n={acc['n']})",
        )
    ax.set_xlim(left=0)
    ax.set_xlabel("generated tokens per question (rejected candidates and every chain included)")
    ax.set_ylabel("accuracy (Wilson 95%)")
    ax.set_ylim(-0.02, 1.02)
    title = f"Accuracy against cost: {Path(summary['data']).name}"
    ax.set_title(f"{title}\n{model}" if model else title, fontsize=9)
    ax.grid(alpha=0.3)
    if entries:  # o plain greedy, s orchestrated, ^ self-consistency
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_fidelity(summary: dict[str, Any], path: Path) -> Path:
    """Answer agreement with the reference per configuration (the reference itself left out)."""
    plt = _pyplot()
    entries = [e for e in summary["configs"] if e.get("fidelity") and e["fidelity"]["n"]]
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * max(len(entries), 2) + 1.4))
    colours = _colours(len(entries))
    for i, e in enumerate(entries):
        f = e["fidelity"]
        lo, hi = f["ci95"]
        ax.barh(i, f["rate"], color=colours[i], alpha=0.75)
        ax.errorbar(f["rate"], i, xerr=_err(f["rate"], lo, hi), fmt="none", ecolor="k", capsize=3)
        ax.text(1.01, i, f"{f['k']}/{f['n']}", va="center", fontsize=7)
    labels, model = short_labels(entries)
    ax.set_yticks(range(len(entries)), labels, fontsize=7)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("answers agreeing with the reference (Wilson 95%)")
    title = f"Fidelity: {Path(summary['data']).name}"
    ax.set_title(f"{title}\n{model}" if model else title, fontsize=9)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
