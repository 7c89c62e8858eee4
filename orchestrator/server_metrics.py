"""Prometheus text exposition, written by hand: labelled counters, gauges and histograms.

>>> m = Metrics()
>>> m.inc("qslm_http_requests_total", route="/healthz", status="200")
>>> "qslm_http_requests_total{route=\\"/healthz\\",status=\\"200\\"} 1" in m.render()
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

HELP = {
    "qslm_http_requests_total": ("counter", "HTTP requests answered, by route, method and status."),
    "qslm_http_request_duration_seconds": ("histogram", "Time from request to the end of the response, by route."),
    "qslm_solves_total": ("counter", "Solve jobs by outcome: ok, partial, cancelled, skipped, error."),
    "qslm_solve_duration_seconds": ("histogram", "Time the worker spent on one solve."),
    "qslm_queue_wait_seconds": ("histogram", "Time a solve waited in the queue."),
    "qslm_interventions_total": ("counter", "Interventions fired during solves, by kind."),
    "qslm_queue_rejections_total": ("counter", "Requests refused with 429 because the queue was full."),
    "qslm_client_disconnects_total": ("counter", "Clients that went away before their answer."),
    "qslm_checks_total": ("counter", "Steps checked by /v1/check, by verdict."),
    "qslm_queue_depth": ("gauge", "Solves waiting in the queue."),
    "qslm_busy": ("gauge", "1 while a worker is solving."),
    "qslm_running": ("gauge", "Solves running now."),
}

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = (*labels, *extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """Thread-safe metric families; gauges are read through callbacks at render time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = {}
        self._hist: dict[str, dict[Labels, list[float]]] = {}  # per bucket counts, then +Inf count, then sum
        self._gauges: dict[str, Callable[[], float]] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            family = self._counters.setdefault(name, {})
            family[key] = family.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            family = self._hist.setdefault(name, {})
            row = family.setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if value <= bound:
                    row[i] += 1
            row[-2] += 1
            row[-1] += value

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        self._gauges[name] = read

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (0 when never incremented), for tests and the load bench."""
        with self._lock:
            return self._counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            counters = {k: dict(v) for k, v in self._counters.items()}
            hists = {k: {lk: list(row) for lk, row in v.items()} for k, v in self._hist.items()}
        for name in sorted(set(counters) | set(hists) | set(self._gauges) | set(HELP)):
            kind, text = HELP.get(name, ("untyped", name))
            if name in counters:
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
                lines += [f"{name}{_fmt_labels(lk)} {_num(v)}" for lk, v in sorted(counters[name].items())]
            elif name in hists:
                lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
                for lk, row in sorted(hists[name].items()):
                    for bound, count in zip(LATENCY_BUCKETS, row, strict=False):
                        lines.append(f"{name}_bucket{_fmt_labels(lk, (('le', repr(bound)),))} {_num(count)}")
                    lines.append(f"{name}_bucket{_fmt_labels(lk, (('le', '+Inf'),))} {_num(row[-2])}")
                    lines.append(f"{name}_count{_fmt_labels(lk)} {_num(row[-2])}")
                    lines.append(f"{name}_sum{_fmt_labels(lk)} {row[-1]!r}")
            elif name in self._gauges:
                lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", f"{name} {_num(self._gauges[name]())}"]
        return "\n".join(lines) + "\n"
