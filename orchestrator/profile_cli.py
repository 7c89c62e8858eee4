"""Options, entry point, plot and summary of ``qslm profile``; the heavy work is in :mod:`orchestrator.profile`.

Kept apart so that building the command line does not import torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestrator.profile import Profile

DEFAULT_MAX_TOKENS = 128  # tokens per calibration text
DEFAULT_LIMIT = 16  # calibration texts
DEFAULT_BATCH = 8  # texts per forward pass
DEFAULT_TOP_K = 1024  # reference tokens kept per position for the KL (the rest is one bucket)


def plot_profile(profile: Profile, path: str | Path) -> Path | None:
    """A bar chart per layer: KL with only that layer quantized, and KL removed by restoring only that
    layer (``full_kl - restore_kl``). Returns None (and says so) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'quantized-slm[plots]'): no plot written", file=sys.stderr)
        return None
    xs = [s.index for s in profile.layers]
    width = 0.4
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(xs) + 2), 4))
    ax.bar([x - width / 2 for x in xs], [s.quant_kl for s in profile.layers], width,
           label="KL, only this layer quantized")  # fmt: skip
    ax.bar([x + width / 2 for x in xs], [profile.full_kl - s.restore_kl for s in profile.layers], width,
           label="KL removed by restoring only this layer")  # fmt: skip
    ax.set_xlabel("decoder layer")
    ax.set_ylabel("KL(reference || model), nats per token")
    ax.set_xticks(xs)
    ax.set_title(f"{profile.model}, {profile.quant}: full KL {profile.full_kl:.4f}, "
                 f"top-1 agreement {profile.top1_agreement:.1%}")  # fmt: skip
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------------- CLI


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``qslm profile``."""
    from orchestrator.catalog import DEFAULT_MODEL

    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help=f"catalog name, folder or .gguf (default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--quant", default="sim-nf4", help="sim-nf4 | sim-fp4 | sim-int8 | rtn-int2..8 (default sim-nf4)"
    )
    parser.add_argument("--group-size", type=int, default=128, help="group size of rtn-* quantization (default 128)")
    parser.add_argument("--data", default=None, help="GSM8K-format JSONL calibration file (default: synthetic suite)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"calibration texts (default {DEFAULT_LIMIT})")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                        help=f"tokens per text (default {DEFAULT_MAX_TOKENS})")  # fmt: skip
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH, help=f"texts per pass (default {DEFAULT_BATCH})"
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        help=f"reference tokens kept per position for KL; 0 = whole vocabulary (default {DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--compare",
        action="append",
        metavar="LAYERS",
        help="instead of profiling, compare escalation layer choices (repeat: 'middle:0.25', '3,7,11', "
        "'profile:PATH') with those layers restored in the quantized model, on --data",
    )
    parser.add_argument("--profile-layers", type=int, default=4,
                        help="layers a --compare profile:PATH takes (default 4)")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--dtype", default=None, help="float32 | bfloat16 | float16 (default: float32 on CPU)")
    parser.add_argument("--out", default=None,
                        help="file to write (default profile.json; layer_choices.json with --compare)")  # fmt: skip
    parser.add_argument("--plot", default=None, help="PNG file for a bar chart (needs matplotlib)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_profile_command(args: argparse.Namespace) -> int:
    """Run ``qslm profile``: profile, write the file (and plot), print a summary."""
    from orchestrator.profile import calibration_texts, run_profile

    if args.compare:
        _check_compare(args)
        return _compare(args, calibration_texts(args.data, limit=args.limit))
    args.out = args.out or "profile.json"
    texts = calibration_texts(args.data, limit=args.limit)
    profile = run_profile(args.model, quant=args.quant, texts=texts, max_tokens=args.max_tokens,
                          batch_size=args.batch_size, top_k=args.top_k, group_size=args.group_size,
                          device=args.device, dtype=args.dtype, progress=not args.no_progress,
                          checkpoint=f"{args.out}.partial")  # fmt: skip
    path = profile.write_profile(args.out)
    if args.plot:
        plot_profile(profile, args.plot)
    print(summary(profile))
    print(f"wrote {path} (a policy names it as layers: profile:{path})")
    return 0


def _check_compare(args: argparse.Namespace) -> None:
    """Refuse what would waste the run or overwrite a profile, before any model loads."""
    from pathlib import Path

    from orchestrator.errors import InputError

    if args.plot:
        raise InputError("--plot draws a profile; --compare writes a table and a JSON report instead")
    if args.data is None:
        raise InputError("--compare needs --data: text the profile did not see (the default synthetic suite is "
                         "what profiles are measured on)")  # fmt: skip
    if args.profile_layers < 1:
        raise InputError(f"--profile-layers must be at least 1, got {args.profile_layers}")
    args.out = args.out or "layer_choices.json"
    named = [Path(c.removeprefix("profile:")).expanduser().resolve() for c in args.compare if c.startswith("profile:")]
    if Path(args.out).resolve() in named:
        raise InputError(f"--out {args.out} is a profile being compared; write the report elsewhere")


def _compare(args: argparse.Namespace, texts: list[str]) -> int:
    from orchestrator.layer_compare import compare_layer_choices

    report = compare_layer_choices(args.model, quant=args.quant, choices={c: c for c in args.compare}, texts=texts,
                                   profile_layers=args.profile_layers, max_tokens=args.max_tokens,
                                   batch_size=args.batch_size, top_k=args.top_k, group_size=args.group_size,
                                   device=args.device, dtype=args.dtype, progress=not args.no_progress)  # fmt: skip
    print(report.table())
    print(f"wrote {report.write(args.out)}")
    return 0


def summary(profile: Profile, k: int = 4) -> str:
    """A few lines for a terminal."""
    by_quant = sorted(profile.layers, key=lambda s: (-s.quant_kl, s.index))[:k]
    lines = [
        f"{profile.model} {profile.quant}: {profile.n_texts} texts, {profile.n_tokens} tokens, {profile.seconds:.1f}s",
        f"full KL {profile.full_kl:.5f}, top-1 agreement {profile.top1_agreement:.2%}",
        "most worth restoring: " + ", ".join(
            f"{s.index} ({s.restore_kl:.5f})" for s in sorted(profile.layers, key=lambda s: (s.restore_kl, s.index))[:k]
        ),
        "most hurt by quantizing: " + ", ".join(f"{s.index} ({s.quant_kl:.5f})" for s in by_quant),
        "per class: " + ", ".join(
            f"{name} n={c.tokens} kl={c.kl:.4f} flips={c.top1_flip_rate:.1%}" for name, c in profile.classes.items()
        ),
    ]  # fmt: skip
    return "\n".join(lines)
