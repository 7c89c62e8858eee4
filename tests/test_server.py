"""The HTTP service, end to end: a real uvicorn server on loopback, a real httpx client, a tiny random model.

The tiny model writes garbage bytes, so budgets are small (3 steps, 16 tokens) and assertions are about
the service (shapes, order, persistence, limits, queueing, cancellation), not about answers.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from orchestrator.api import Orchestrator, SolveResult
from orchestrator.server import BackgroundServer, create_app, serve_in_background
from orchestrator.server_models import Limits
from tests.browser import chromium_binary
from tests.tiny import save_tiny

LIMITS = Limits(max_question_chars=300, max_steps=3, max_step_tokens=8, max_tokens=16, max_candidates=2, max_attempts=1)
QUESTION = "Tom has 3 bags of 4 apples. How many apples?"
TINY_POLICY = """name: tiny
description: Test policy.
extends: default
steps: {max_steps: 3, max_step_tokens: 8, max_total_tokens: 16}
"""


# ----------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: threads only fight
    yield save_tiny("llama", tmp_path_factory.mktemp("tiny") / "model")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("policies")
    (folder / "tiny.yaml").write_text(TINY_POLICY)
    return folder


def load_orch(tiny_dir: Path) -> Orchestrator:
    return Orchestrator.from_name(str(tiny_dir), device="cpu")


@contextlib.contextmanager
def running(solver: Any, db: Path, policy_dir: Path | None = None, **kwargs: Any) -> Iterator[BackgroundServer]:
    dirs = [policy_dir] if policy_dir else []
    srv = serve_in_background(create_app(solver, db_path=db, policy_dirs=dirs, limits=LIMITS, **kwargs))
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server(tiny_dir: Path, policy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    db = tmp_path_factory.mktemp("db") / "traces.sqlite"
    with running(load_orch(tiny_dir), db, policy_dir) as srv:
        yield srv


@pytest.fixture
def client(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def parse_sse(lines: Iterator[str]) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, event, data) per server-sent event; keep-alive comments skipped."""
    out: list[tuple[int, str, dict[str, Any]]] = []
    cur: dict[str, str] = {}
    for line in lines:
        if not line:
            if cur:
                out.append((int(cur["id"]), cur["event"], json.loads(cur["data"])))
            cur = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            cur[key] = value
    return out


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value}; fails on any malformed line."""
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = sample.match(line)
        assert m, f"malformed metrics line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def wait_for(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.02)


class Gated:
    """An Orchestrator whose solves wait at ``gate`` before starting and may pause after each step."""

    def __init__(self, orch: Orchestrator, after_step: Callable[[dict[str, Any]], object] | None = None) -> None:
        self.orch = orch
        self.loaded = orch.loaded
        self.gate = threading.Event()
        self.started = threading.Event()
        self.after_step = after_step
        self.events: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()  # two workers may start solves at once

    def escalation_layers(self, policy: Any) -> list[int]:
        return self.orch.escalation_layers(policy)

    def solve(self, question: str, *, policy: Any = None, seed: Any = None, on_event: Any = None) -> SolveResult:
        with self._lock:
            self.calls += 1
        self.started.set()
        assert self.gate.wait(60)

        def hook(event: dict[str, Any]) -> None:
            self.events.append(event["event"])
            on_event(event)
            if event["event"] == "step" and self.after_step is not None:
                self.after_step(event)

        return self.orch.solve(question, policy=policy, seed=seed, on_event=hook)


def metric(srv: BackgroundServer, name: str, **labels: str) -> float:
    app = srv.server.config.app
    return float(app.state.service.metrics.value(name, **labels))


# ----------------------------------------------------------------- solve


def test_solve_returns_the_result_with_a_stored_trace(client: httpx.Client) -> None:
    r = client.post("/v1/solve", json={"question": QUESTION, "seed": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["partial"] is False and body["question"] == QUESTION
    assert 1 <= len(body["steps"]) <= LIMITS.max_steps  # the default policy was capped to the limits
    assert body["tokens"] <= LIMITS.max_tokens
    assert body["trace"]["meta"]["trace_id"] == body["trace_id"]
    stored = client.get(f"/v1/traces/{body['trace_id']}").json()
    assert stored["question"] == QUESTION and stored["partial"] is False
    assert stored["trace"] == body["trace"]


def test_solve_streams_events_in_order_and_ends_with_the_result(client: httpx.Client) -> None:
    with client.stream("POST", "/v1/solve", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.iter_lines())
    ids = [i for i, _, _ in events]
    names = [name for _, name, _ in events]
    assert ids == sorted(set(ids))  # every event has an increasing id
    assert names[0] == "accepted" and names[-2:] == ["final", "result"]
    assert {"monitor", "verify", "step"} <= set(names)
    result = events[-1][2]
    steps = [data for _, name, data in events if name == "step"]
    assert [s["text"] for s in steps] == [s["text"] for s in result["steps"]]
    assert result["request_id"] == events[0][2]["request_id"]


def test_accept_header_also_selects_server_sent_events(client: httpx.Client) -> None:
    headers = {"Accept": "text/event-stream"}
    with client.stream("POST", "/v1/solve", json={"question": QUESTION}, headers=headers) as r:
        names = [name for _, name, _ in parse_sse(r.iter_lines())]
    assert names[-1] == "result"


def test_inline_policy_runs_and_names_itself(client: httpx.Client) -> None:
    policy = {
        "extends": "plain",
        "name": "inline-plain",
        "steps": {"max_steps": 2, "max_step_tokens": 4, "max_total_tokens": 8},
    }
    r = client.post("/v1/solve", json={"question": QUESTION, "policy": policy})
    assert r.status_code == 200, r.text
    assert r.json()["policy"] == "inline-plain" and len(r.json()["steps"]) <= 2


def test_policies_lists_builtins_and_the_policy_directory(client: httpx.Client) -> None:
    listing = {p["name"]: p for p in client.get("/v1/policies").json()}
    assert {"default", "plain", "tutoring", "tiny"} <= set(listing)
    assert listing["tiny"]["description"] == "Test policy."
    assert client.post("/v1/solve", json={"question": QUESTION, "policy": "tiny"}).json()["policy"] == "tiny"


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"policy": "nope"}, ["body", "policy"]),  # unknown name
        ({"policy": "../default"}, ["body", "policy", "constrained-str"]),  # a path, refused by the schema
        ({"policy": {"extends": "/etc/passwd"}}, ["body", "policy", "extends"]),  # inline extends must be a name
        ({"policy": {"escalation": {"layers": "profile:/tmp/x.json"}}}, ["body", "policy", "escalation", "layers"]),
        ({"policy": {"resample": {"n_candidates": 0}}}, ["body", "policy"]),  # does not validate
        ({"policy": {"verifiers": ["no_such_verifier"]}}, ["body"]),  # unknown verifier
    ],
)
def test_bad_policies_are_422_naming_the_problem(client: httpx.Client, payload: dict[str, Any], loc: list[str]) -> None:
    r = client.post("/v1/solve", json={"question": QUESTION, **payload})
    assert r.status_code == 422, r.text
    assert any(d["loc"][: len(loc)] == loc for d in r.json()["detail"]), r.json()


@pytest.mark.parametrize(
    ("payload", "limit"),
    [
        ({"question": "x" * 301}, "max_question_chars"),
        ({"question": QUESTION, "max_steps": 4}, "max_steps"),
        ({"question": QUESTION, "max_tokens": 17}, "max_tokens"),
        ({"question": QUESTION, "max_step_tokens": 9}, "max_step_tokens"),
        ({"question": QUESTION, "deadline_s": 601}, "max_deadline_s"),
        ({"question": QUESTION, "policy": {"resample": {"n_candidates": 3}}}, "max_candidates"),
        ({"question": QUESTION, "policy": {"steps": {"max_steps": 4}}}, "max_steps"),
        ({"question": "€" * 300}, "context_tokens"),  # 900 byte tokens: past the tiny model's 512 positions
    ],
)
def test_limits_answer_422_naming_the_limit(client: httpx.Client, payload: dict[str, Any], limit: str) -> None:
    r = client.post("/v1/solve", json=payload)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["detail"]
    assert detail["type"] == "limit_exceeded" and detail["ctx"]["limit"] == limit and limit in detail["msg"]


def test_schema_errors_are_422(client: httpx.Client) -> None:
    assert client.post("/v1/solve", json={"question": QUESTION, "temperature": 1}).status_code == 422  # extra key
    assert (
        client.post("/v1/solve", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    )
    assert client.post("/v1/solve", json={"question": "   "}).status_code == 422


# ----------------------------------------------------------------- check, traces, metrics, health


@pytest.mark.parametrize(
    ("text", "status", "corrected"),
    [
        ("She walked 12 x 4 = 46 miles.", "wrong", "She walked 12 x 4 = 48 miles."),  # wrong: fixed text
        ("12 x 4 = 48", "correct", None),  # right
        ("It was sunny.", "unknown", None),  # nothing to judge is not wrong
    ],
)
def test_check_grades_one_step(client: httpx.Client, text: str, status: str, corrected: str | None) -> None:
    body = client.post("/v1/check", json={"text": text}).json()
    assert body["status"] == status and body["corrected_text"] == corrected
    if status == "wrong":
        assert body["claims"][0]["expected"] == "48"


def test_traces_survive_a_restart(tiny_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "traces.sqlite"
    orch = load_orch(tiny_dir)
    with running(orch, db) as srv:
        body = httpx.post(f"{srv.url}/v1/solve", json={"question": QUESTION}, timeout=60).json()
    with running(orch, db) as srv:  # a new app on the same file
        stored = httpx.get(f"{srv.url}/v1/traces/{body['trace_id']}").json()
        missing = httpx.get(f"{srv.url}/v1/traces/0123456789abcdef")
    assert stored["trace"] == body["trace"] and stored["answer"] == body["answer"]
    assert missing.status_code == 404 and "no trace" in missing.json()["detail"]


def test_trace_view_is_the_html_page(client: httpx.Client) -> None:
    body = client.post("/v1/solve", json={"question": QUESTION}).json()
    page = client.get(f"/v1/traces/{body['trace_id']}/view")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('class="card box step"') == len(body["steps"])
    assert client.get("/v1/traces/not%20an%20id/view").status_code == 422


@pytest.mark.browser
def test_trace_view_renders_the_steps_in_chromium(client: httpx.Client, server: BackgroundServer) -> None:
    from tests.browser import _run

    binary = chromium_binary()
    if binary is None:
        pytest.skip("chromium is not installed")
    body = client.post("/v1/solve", json={"question": QUESTION}).json()
    proc = _run(binary, ["--dump-dom"], f"{server.url}/v1/traces/{body['trace_id']}/view")
    assert proc.returncode == 0 and "<html" in proc.stdout, proc.stderr[-2000:]
    assert proc.stdout.count('class="card box step"') == len(body["steps"])
    assert "Tom has 3 bags" in proc.stdout


def test_metrics_are_prometheus_text(client: httpx.Client) -> None:
    client.post("/v1/solve", json={"question": QUESTION})
    client.post("/v1/check", json={"text": "1 + 1 = 3"})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    samples = parse_metrics(r.text)
    assert samples['qslm_http_requests_total{method="POST",route="/v1/solve",status="200"}'] >= 1
    assert samples['qslm_checks_total{status="wrong"}'] >= 1
    assert samples['qslm_solves_total{outcome="ok"}'] >= 1
    assert any(k.startswith("qslm_interventions_total{") for k in samples)
    buckets = [
        v for k, v in samples.items() if k.startswith('qslm_http_request_duration_seconds_bucket{route="/v1/solve"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] >= 1  # cumulative
    assert "qslm_queue_depth" in samples


def test_healthz_names_the_model_and_queue(client: httpx.Client, tiny_dir: Path) -> None:
    body = client.get("/healthz").json()
    assert body["model"] == str(tiny_dir) and body["quant"] == "none"
    assert body["queue_depth"] == 0 and body["limits"]["max_steps"] == 3


def test_openapi_describes_the_endpoints(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/solve", "/v1/check", "/v1/traces/{trace_id}", "/v1/traces/{trace_id}/view"} <= paths
    assert {"/v1/policies", "/healthz", "/metrics"} <= paths
    solve = spec["components"]["schemas"]["SolveRequest"]
    assert solve["additionalProperties"] is False
    assert all("description" in p for p in solve["properties"].values())
    assert "429" in spec["paths"]["/v1/solve"]["post"]["responses"]
    assert "text/event-stream" in spec["paths"]["/v1/solve"]["post"]["responses"]["200"]["content"]


# ----------------------------------------------------------------- load and faults


def test_full_queue_answers_429_with_retry_after(tiny_dir: Path, tmp_path: Path) -> None:
    gated = Gated(load_orch(tiny_dir))
    with running(gated, tmp_path / "t.sqlite", queue_size=1) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        answers: list[httpx.Response] = []
        post = lambda: answers.append(c.post("/v1/solve", json={"question": QUESTION}))  # noqa: E731
        first = threading.Thread(target=post)
        first.start()
        assert gated.started.wait(30)  # the worker holds the first request
        second = threading.Thread(target=post)
        second.start()
        wait_for(lambda: c.get("/healthz").json()["queue_depth"] == 1)  # the second waits in the queue
        refused = c.post("/v1/solve", json={"question": QUESTION})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "queue is full" in refused.json()["detail"]
        gated.gate.set()
        first.join(60)
        second.join(60)
        assert [a.status_code for a in answers] == [200, 200]
        assert len({a.json()["request_id"] for a in answers}) == 2
        assert metric(srv, "qslm_queue_rejections_total") == 1


def test_workers_run_solves_at_once_and_merge_their_steps(tiny_dir: Path, tmp_path: Path) -> None:
    gated = Gated(load_orch(tiny_dir))
    with running(gated, tmp_path / "t.sqlite", workers=2) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/healthz").json()["workers"] == 2
        answers: list[httpx.Response] = []
        post = lambda q: answers.append(c.post("/v1/solve", json={"question": q}))  # noqa: E731
        threads = [threading.Thread(target=post, args=(q,)) for q in (QUESTION, "What is 7 x 8?")]
        for t in threads:
            t.start()
        wait_for(lambda: gated.calls == 2)  # both solves started: with one worker the second would wait queued
        assert c.get("/healthz").json()["running"] == 2
        gated.gate.set()
        for t in threads:
            t.join(60)
        assert sorted(a.status_code for a in answers) == [200, 200]
        assert max(solves for solves, _ in gated.orch.batch_sizes) == 2  # their steps went through the model together
        wait_for(lambda: c.get("/healthz").json()["running"] == 0)  # the answer may leave before the worker frees
        assert parse_metrics(c.get("/metrics").text)["qslm_running"] == 0


def test_a_model_that_yields_non_finite_logits_is_a_500_naming_it(tiny_dir: Path, tmp_path: Path) -> None:
    orch = load_orch(tiny_dir)
    model = orch.generator(orch.default_policy).model
    handle = model.lm_head.register_forward_hook(lambda _m, _i, out: out.index_fill(-1, torch.tensor([3]), math.nan))
    try:
        with running(orch, tmp_path / "t.sqlite") as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
            answer = c.post("/v1/solve", json={"question": QUESTION})
            assert answer.status_code == 500
            assert "not finite" in answer.json()["detail"]
            assert c.get("/healthz").status_code == 200  # the server goes on
    finally:
        handle.remove()


def test_deadline_returns_the_partial_result(tiny_dir: Path, tmp_path: Path) -> None:
    gated = Gated(load_orch(tiny_dir), after_step=lambda e: time.sleep(1.2) if e["index"] == 0 else None)
    gated.gate.set()
    policy = {"extends": "plain", "steps": {"max_steps": 3, "max_step_tokens": 4, "max_total_tokens": 16}}
    with running(gated, tmp_path / "t.sqlite") as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        full = c.post("/v1/solve", json={"question": QUESTION, "policy": policy}).json()
        assert len(full["steps"]) >= 2  # precondition: there is more than one step to cut
        r = c.post("/v1/solve", json={"question": QUESTION, "policy": policy, "deadline_s": 1.0})
        body = r.json()
        assert r.status_code == 200 and body["partial"] is True and body["partial_reason"] == "deadline"
        assert [s["text"] for s in body["steps"]] == [full["steps"][0]["text"]]
        stored = c.get(f"/v1/traces/{body['trace_id']}").json()
        assert stored["partial"] is True and stored["trace"]["meta"]["partial"] is True
        assert c.get(f"/v1/traces/{body['trace_id']}/view").status_code == 200


def test_a_client_that_disconnects_cancels_its_generation(tiny_dir: Path, tmp_path: Path) -> None:
    release = threading.Event()
    gated = Gated(load_orch(tiny_dir), after_step=lambda e: release.wait(60))
    gated.gate.set()
    policy = {"extends": "plain", "steps": {"max_steps": 3, "max_step_tokens": 4, "max_total_tokens": 16}}
    with running(gated, tmp_path / "t.sqlite", poll_s=0.05) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        with c.stream("POST", "/v1/solve", json={"question": QUESTION, "policy": policy, "stream": True}) as r:
            for line in r.iter_lines():
                if line == "event: step":
                    break  # leave after the first step: closing the response drops the connection
        wait_for(lambda: metric(srv, "qslm_client_disconnects_total") == 1)
        release.set()
        wait_for(lambda: metric(srv, "qslm_solves_total", outcome="cancelled") == 1)
        assert gated.events.count("step") == 1 and "final" not in gated.events  # the worker stopped early
        assert c.post("/v1/solve", json={"question": QUESTION, "policy": policy}).status_code == 200  # still serves


def test_a_queued_request_whose_client_left_is_skipped(tiny_dir: Path, tmp_path: Path) -> None:
    gated = Gated(load_orch(tiny_dir))
    with running(gated, tmp_path / "t.sqlite", poll_s=0.05) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        first: list[httpx.Response] = []
        t = threading.Thread(target=lambda: first.append(c.post("/v1/solve", json={"question": QUESTION})))
        t.start()
        assert gated.started.wait(30)
        body = json.dumps({"question": QUESTION}).encode()
        host, port = srv.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as raw:
            head = (
                f"POST /v1/solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
            )
            raw.sendall(head.encode() + b"\r\n\r\n" + body)
            wait_for(lambda: c.get("/healthz").json()["queue_depth"] == 1)
        wait_for(lambda: metric(srv, "qslm_client_disconnects_total") == 1)
        gated.gate.set()
        t.join(60)
        wait_for(lambda: metric(srv, "qslm_solves_total", outcome="skipped") == 1)
        assert first[0].status_code == 200 and gated.calls == 1  # the abandoned job never reached the model


# ----------------------------------------------------------------- fuzzing


def test_fuzzing_the_openapi_schema_finds_no_server_errors(server: BackgroundServer) -> None:
    import hypothesis
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    calls: list[int] = []

    def fuzz(operation: Any) -> None:
        @hypothesis.settings(
            max_examples=12,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: Any) -> None:
            calls.append(1)
            response = case.call(base_url=server.url, timeout=60)
            if response.status_code >= 500:
                failures.append(f"{operation.label}: {response.status_code} {response.text[:300]}")
            case.validate_response(response, checks=checks)

        run()

    result: Any
    for result in schema.get_all_operations():
        fuzz(result.ok())
    assert not failures
    assert len(calls) >= 7 * 5


def test_serve_arguments_default_to_loopback() -> None:
    import argparse

    from orchestrator.server_cli import add_serve_arguments

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--policy-dir", "a", "--policy-dir", "b", "--max-steps", "5"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.queue_size == 16
    assert args.policy_dir == ["a", "b"] and args.max_steps == 5 and args.policy == "default"
    assert args.workers == 1
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as exit_info:  # refused before any model loads
            parser.parse_args(["--workers", bad])
        assert exit_info.value.code == 2
