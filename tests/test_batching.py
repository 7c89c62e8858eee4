"""Concurrent solves share the model: merged proposals equal solo ones, and one failure stalls nobody."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from orchestrator.api import Orchestrator
from orchestrator.batching import run_concurrently
from orchestrator.errors import InputError
from orchestrator.generation import StepGenerator
from orchestrator.loading import load
from orchestrator.steps import Sampling
from policies import Policy, load_policy
from tests.tiny import byte_tokenizer, save_tiny, tiny_model

T = TypeVar("T")
QUESTIONS = [
    "Tom has 12 boxes of 4 pens. How many pens?",
    "What is 3 + 4?",
    "A farmer has 17 sheep and buys 5 more. How many now?",
    "Sam reads 6 pages a day for 7 days. How many pages?",
]


def with_changes(policy: Policy, **sections: dict[str, Any]) -> Policy:
    data = policy.model_dump()
    for name, fields in sections.items():
        data[name].update(fields)
    return Policy.model_validate(data)


def within(seconds: float, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread and fail (instead of hanging the suite) if it does not return in time."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test thread
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a solve waits for one that left"
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def eager_policy() -> Policy:
    """Short answers with thresholds a random model's steps (scoring 0.7-0.9) cross: every intervention fires."""
    return with_changes(
        load_policy("default"),
        steps={"max_total_tokens": 48, "max_step_tokens": 16},
        sampling={"seed": 5},
        confidence={"accept_threshold": 0.9, "escalate_threshold": 0.75},
    )


@pytest.fixture(scope="module")
def orch(tmp_path_factory: pytest.TempPathFactory) -> Orchestrator:
    """A tiny model quantized to 3 bits with its reference on disk: every intervention can fire."""
    folder = save_tiny("qwen2", tmp_path_factory.mktemp("tiny") / "qwen2", layers=4)
    return Orchestrator(load(str(folder), quant="rtn-int3", device="cpu", progress=False), policy=eager_policy())


def test_proposals_of_separate_sessions_together_equal_each_alone() -> None:
    tok = byte_tokenizer()
    gen = StepGenerator(tiny_model("llama"), tok, boundary="newline")
    prompts = ["Q: 2 + 2 =", "Q: A farmer has 17 sheep and buys 5 more. How many now?\nA:", "Q: 9 x 9"]
    requests = [
        (1, Sampling(max_step_tokens=12)),
        (3, Sampling(temperature=0.0, max_step_tokens=5)),
        (2, Sampling(temperature=0.8, top_p=0.9, seed=3, max_step_tokens=20)),  # sampled beside greedy rows
    ]
    together = [gen.start(p) for p in prompts]
    alone = [gen.start(p) for p in prompts]
    for _ in range(3):  # propose, accept, and propose again on the split caches
        merged = gen.propose_together([(s, n, samp) for s, (n, samp) in zip(together, requests, strict=True)])
        for k, (session, (n, samp)) in enumerate(zip(alone, requests, strict=True)):
            solo = gen.propose(session, n=n, sampling=samp)
            assert [[c.token_ids for c in q] for q in merged[k]] == [[c.token_ids for c in q] for q in solo]
            assert len(merged[k][0]) == n
            gen.accept(session, n - 1)
            gen.accept(together[k], n - 1)
    for a, b in zip(alone, together, strict=True):
        assert a.token_ids() == b.token_ids()
    assert len({len(s.token_ids()) for s in together}) > 1  # the sessions really had different lengths


def test_concurrent_solves_equal_solves_one_at_a_time(orch: Orchestrator) -> None:
    before = len(orch.batch_sizes)
    one_by_one = within(600, lambda: orch.solve_many(QUESTIONS))
    solo_runs = orch.batch_sizes[before:]
    together = within(600, lambda: orch.solve_many(QUESTIONS, concurrency=4))
    merged_runs = orch.batch_sizes[before + len(solo_runs) :]
    for a, b in zip(one_by_one, together, strict=True):
        assert a.question == b.question
        assert a.text == b.text
        assert a.answer == b.answer
        assert a.interventions == b.interventions
        assert a.tokens_spent == b.tokens_spent
    assert all(solves == 1 for solves, _ in solo_runs)
    assert max(solves for solves, _ in merged_runs) > 1  # proposals of different solves really ran together
    assert len(merged_runs) < len(solo_runs)
    fired = {kind for r in together for kind in r.interventions}
    assert {"resample", "escalate"} <= fired  # re-sampling and the layer swap went through the merged path


def test_a_failing_solve_does_not_stall_the_others(orch: Orchestrator) -> None:
    alone = orch.solve(QUESTIONS[0])

    def fn(q: str) -> Any:
        def on_event(event: dict[str, Any]) -> None:
            if q == QUESTIONS[1] and event.get("event") == "monitor":
                raise RuntimeError("the client went away")

        return orch.solve(q, on_event=on_event)

    done = within(600, lambda: list(run_concurrently(QUESTIONS[:3], fn, 3)))
    by_question = {d.item: d for d in done}
    assert isinstance(by_question[QUESTIONS[1]].error, RuntimeError)
    assert by_question[QUESTIONS[0]].error is None
    assert by_question[QUESTIONS[0]].result.text == alone.text  # type: ignore[union-attr]
    assert orch._batcher.members == 0  # every stream left the batcher


def test_a_nested_solve_is_refused_instead_of_deadlocking(orch: Orchestrator) -> None:
    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "monitor":
            orch.solve(QUESTIONS[1])

    with pytest.raises(InputError, match="cannot start another solve"):
        within(60, lambda: orch.solve(QUESTIONS[0], on_event=on_event))
    assert orch._batcher.members == 0
    assert orch.solve(QUESTIONS[1]).steps  # the orchestrator is still usable


def test_a_failed_batched_run_costs_only_the_solve_that_causes_it(
    orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    alone = [orch.solve(q) for q in QUESTIONS[:3]]
    gen = orch.generator(orch.default_policy)
    real = gen.propose_together
    poisoned: list[Any] = []  # the session of the second question, once it exists
    sizes: list[int] = []

    def failing(requests: Any, prefix: Any = ()) -> Any:
        sizes.append(len(requests))
        if len(requests) > 2:
            raise RuntimeError("out of memory")  # a batch too large for the device
        if poisoned and any(r[0] is poisoned[0] for r in requests):
            raise ValueError("bad session")
        return real(requests, prefix)

    def mark(q: str) -> Any:
        def on_event(event: dict[str, Any]) -> None:
            if q == QUESTIONS[1] and not poisoned and event.get("event") == "monitor":
                poisoned.append(orch._batcher.current().session)  # type: ignore[union-attr]

        return orch.solve(q, on_event=on_event)

    monkeypatch.setattr(gen, "propose_together", failing)
    done = within(600, lambda: list(run_concurrently(QUESTIONS[:3], mark, 3)))
    by_question = {d.item: d for d in done}
    assert max(sizes) == 3 and 1 in sizes  # the merged run failed, then each proposal ran alone
    assert isinstance(by_question[QUESTIONS[1]].error, ValueError)  # only the solve whose session is bad fails
    for i in (0, 2):
        assert by_question[QUESTIONS[i]].error is None
        assert by_question[QUESTIONS[i]].result.text == alone[i].text  # type: ignore[union-attr]
    assert orch._batcher.members == 0


def test_leaving_the_loop_early_stops_the_solves_and_resumes_the_batcher(orch: Orchestrator) -> None:
    stream = orch.solve_iter(QUESTIONS * 3, concurrency=3)
    first = within(600, lambda: next(stream))
    assert first.error is None
    within(600, stream.close)  # what Ctrl-C does to the loop: not-started solves are cancelled
    assert orch._batcher.members == 0 and not orch._batcher._stopped
    assert orch.solve(QUESTIONS[0]).steps


def test_run_concurrently_shares_time_returns_errors_and_cancels_on_early_exit() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def fn(i: int) -> int:
        with lock:
            started.append(i)
        time.sleep(0.05)
        if i == 2:
            raise ValueError("bad item")
        return i * i

    t0 = time.perf_counter()
    done = list(run_concurrently(list(range(6)), fn, 3))
    wall = time.perf_counter() - t0
    assert sorted(d.index for d in done) == list(range(6))
    assert {d.index: d.result for d in done if d.error is None} == {0: 0, 1: 1, 3: 9, 4: 16, 5: 25}
    assert isinstance(next(d.error for d in done if d.index == 2), ValueError)
    assert sum(d.seconds for d in done) == pytest.approx(wall, rel=0.25)  # shares add up to the wall time
    assert wall < 6 * 0.05  # they really ran at once, so each was charged a share, not its whole 50 ms

    started.clear()
    for _ in run_concurrently(list(range(40)), fn, 2):
        break
    time.sleep(0.2)
    assert len(started) < 40  # the items not yet started were cancelled
    with pytest.raises(InputError, match="concurrency"):
        list(run_concurrently([1], fn, 0))


def test_escalated_and_plain_proposals_never_share_a_run(orch: Orchestrator) -> None:
    """One solve escalates every step to all layers while others run plainly: each equals its solo run."""
    # Nothing is confident enough, every low step escalates at once, and escalation restores the whole model.
    eager = with_changes(
        orch.default_policy,
        confidence={"accept_threshold": 1.0, "escalate_threshold": 1.0},
        escalation={"layers": "all", "when": "immediately", "max_per_solve": 100},
    )
    no_swap = with_changes(eager, escalation={"enabled": False})
    policies = [eager, None, None]
    alone = [orch.solve(q, policy=p) for q, p in zip(QUESTIONS[:3], policies, strict=True)]
    assert alone[0].escalations > 0
    assert orch.solve(QUESTIONS[0], policy=no_swap).text != alone[0].text  # the swapped-in layers matter

    def fn(item: tuple[str, Policy | None]) -> Any:
        return orch.solve(item[0], policy=item[1])

    done = within(600, lambda: list(run_concurrently(list(zip(QUESTIONS[:3], policies, strict=True)), fn, 3)))
    for d in done:
        assert d.error is None
        assert d.result.text == alone[d.index].text  # type: ignore[union-attr]
