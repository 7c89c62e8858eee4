"""Load the HTTP service on loopback: throughput, latency, 429s, and exactly one answer per accepted request.

    python benchmarks/bench_load.py --requests 60 --concurrency 8 --queue-size 4 --out load.json
    python benchmarks/bench_load.py --model qwen2.5-0.5b --quant rtn-int4 --requests 20

Starts the server in this process on 127.0.0.1 (a free port) around a tiny random model, or ``--model``,
fires ``--requests`` solves from ``--concurrency`` clients (a share of them as server-sent events), and
stops by itself after ``--max-seconds``. A 429 is counted, not retried (that client backs off up to
``--backoff``). Reports throughput (answers per second), p50/p99 latency of answered requests, the count
of 429s, and checks that every accepted request got exactly one answer: answers counted by the server's
request id, against the worker's own count of finished solves, and every answer's trace readable back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTIONS = [
    "Tom has 3 bags of 4 apples. How many apples?",
    "What is 17 + 25?",
    "A book costs $12 and a pen $3. What do 2 books and 4 pens cost?",
    "Sara reads 15 pages a day. How many pages in a week?",
]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def one_request(client: httpx.AsyncClient, i: int, stream: bool, payload: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    body = {**payload, "question": QUESTIONS[i % len(QUESTIONS)], "stream": stream}
    try:
        if not stream:
            r = await client.post("/v1/solve", json=body)
            data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            return {"i": i, "status": r.status_code, "seconds": time.perf_counter() - started, "data": data,
                    "retry_after": r.headers.get("retry-after"), "answers": 1}  # fmt: skip
        async with client.stream("POST", "/v1/solve", json=body) as r:
            if r.status_code != 200:
                await r.aread()
                return {"i": i, "status": r.status_code, "seconds": time.perf_counter() - started,
                        "data": r.json(), "retry_after": r.headers.get("retry-after"), "answers": 1}  # fmt: skip
            results, event = [], ""
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("result", "error"):
                    results.append(json.loads(line[6:]))
            data = results[-1] if results else {}
            status = int(data.get("status", 0)) if results else 0
            return {"i": i, "status": status, "seconds": time.perf_counter() - started, "data": data,
                    "retry_after": None, "answers": len(results)}  # fmt: skip
    except httpx.HTTPError as exc:
        return {"i": i, "status": -1, "seconds": time.perf_counter() - started, "data": {"error": repr(exc)},
                "retry_after": None, "answers": 0}  # fmt: skip


async def fire(url: str, args: argparse.Namespace) -> tuple[list[dict[str, Any]], float, bool]:
    todo = iter(range(args.requests))
    out: list[dict[str, Any]] = []
    payload: dict[str, Any] = {"deadline_s": args.deadline} if args.deadline else {}
    every = round(1 / args.stream_share) if args.stream_share > 0 else 0

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in todo:
            result = await one_request(client, i, bool(every) and i % every == 0, payload)
            out.append(result)
            if result["status"] == 429:  # not retried, but the client backs off before its next request
                await asyncio.sleep(min(float(result["retry_after"] or 1), args.backoff))

    limits = httpx.Limits(max_connections=args.concurrency)
    started = time.perf_counter()
    timed_out = False
    async with httpx.AsyncClient(base_url=url, timeout=args.max_seconds, limits=limits) as client:
        tasks = [asyncio.create_task(client_loop(client)) for _ in range(args.concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=args.max_seconds)
        if pending:
            timed_out = True
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return out, time.perf_counter() - started, timed_out


def make_app(args: argparse.Namespace, folder: Path) -> Any:
    from orchestrator.api import Orchestrator
    from orchestrator.server import create_app
    from orchestrator.server_models import Limits

    if args.model:
        orch = Orchestrator.from_name(args.model, quant=args.quant, device=args.device)
    else:
        from tests.tiny import save_tiny

        orch = Orchestrator.from_name(str(save_tiny("llama", folder / "tiny")), device="cpu")
    limits = Limits(max_steps=args.max_steps, max_step_tokens=args.max_step_tokens, max_tokens=args.max_tokens,
                    max_candidates=2, max_attempts=1)  # fmt: skip
    return create_app(orch, db_path=folder / "traces.sqlite", queue_size=args.queue_size, limits=limits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model to load (default: a tiny random model, no download)")
    p.add_argument("--quant", default="none")
    p.add_argument("--device", default="cpu")
    p.add_argument("--requests", type=int, default=60, help="solves to send (default 60)")
    p.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--queue-size", type=int, default=4, help="server queue size (default 4)")
    p.add_argument("--stream-share", type=float, default=0.25, help="share of requests sent as SSE (default 0.25)")
    p.add_argument("--deadline", type=float, default=None, help="per-request deadline_s (default: the server's)")
    p.add_argument("--backoff", type=float, default=0.5, help="most seconds a client waits after a 429 (0.5)")
    p.add_argument("--max-steps", type=int, default=3)
    p.add_argument("--max-step-tokens", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop after this long (default 120)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    args = p.parse_args(argv)

    import structlog
    import torch

    from orchestrator.server import serve_in_background

    torch.set_num_threads(args.threads)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    with tempfile.TemporaryDirectory(prefix="qslm-load-") as tmp:
        app = make_app(args, Path(tmp))
        srv = serve_in_background(app)
        try:
            httpx.post(f"{srv.url}/v1/solve", json={"question": QUESTIONS[0]}, timeout=120)  # warm up
            svc = app.state.service
            before = {k: svc.metrics.value("qslm_solves_total", outcome=k) for k in ("ok", "partial")}
            results, wall, timed_out = asyncio.run(fire(srv.url, args))
            after = {k: svc.metrics.value("qslm_solves_total", outcome=k) for k in ("ok", "partial")}
            answered = [r for r in results if r["status"] == 200]
            ids = Counter(r["data"].get("request_id") for r in answered)
            missing_traces = sum(
                httpx.get(f"{srv.url}/v1/traces/{r['data']['trace_id']}").status_code != 200 for r in answered
            )
        finally:
            srv.stop()
    statuses = Counter(r["status"] for r in results)
    latencies = [r["seconds"] for r in answered]
    server_finished = sum(after.values()) - sum(before.values())
    exactly_once = (
        all(r["answers"] == 1 for r in results)
        and all(n == 1 for n in ids.values())
        and None not in ids
        and len(ids) == server_finished
        and missing_traces == 0
    )
    report = {
        "model": args.model or "tiny-random-llama",
        "requests_sent": len(results),
        "requests_planned": args.requests,
        "concurrency": args.concurrency,
        "queue_size": args.queue_size,
        "wall_seconds": round(wall, 3),
        "stopped_by_time_limit": timed_out,
        "throughput_answers_per_s": round(len(answered) / wall, 3) if wall else None,
        "latency_p50_s": None if not latencies else round(percentile(latencies, 50) or 0, 4),
        "latency_p99_s": None if not latencies else round(percentile(latencies, 99) or 0, 4),
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "rejected_429": statuses.get(429, 0),
        "accepted": len(answered),
        "partial": sum(bool(r["data"].get("partial")) for r in answered),
        "server_finished_solves": server_finished,
        "duplicate_answers": sum(n - 1 for n in ids.values() if n > 1),
        "missing_traces": missing_traces,
        "every_accepted_request_answered_exactly_once": exactly_once,
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if exactly_once and not timed_out else 1


if __name__ == "__main__":
    raise SystemExit(main())
