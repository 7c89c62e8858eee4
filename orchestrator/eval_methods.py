"""The methods an evaluation compares: plain greedy, self-consistency and the orchestrated step graph.

Each runner takes a loaded model, one configuration and the questions still to do, and hands one
result row per question to ``sink`` as soon as it has it (so a killed run loses at most one batch).
Plain greedy and self-consistency advance questions as a batch; the orchestrated method runs ``batch``
solves at once through :meth:`orchestrator.api.Orchestrator.solve_iter`, their steps generated as one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.eval_data import EvalConfig, EvalQuestion
from orchestrator.eval_stats import answers_agree

SC_TEMPERATURE = 0.7  # self-consistency chains: sampled, nucleus 0.95
SC_TOP_P = 0.95
ORCH_MAX_STEPS = 200  # the token budget, not the step count, ends a long orchestrated solve


def _policy(config: EvalConfig, max_tokens: int) -> Any:
    """The configuration's policy with the evaluation's token budget."""
    from policies import load_policy, policy_from_dict

    data = load_policy(config.policy_name).model_dump()
    data["steps"]["max_total_tokens"] = max_tokens
    data["steps"]["max_step_tokens"] = min(data["steps"]["max_step_tokens"], max_tokens)
    data["steps"]["max_steps"] = max(data["steps"]["max_steps"], ORCH_MAX_STEPS)
    data["recursion_limit"] = max(data["recursion_limit"], 40 * ORCH_MAX_STEPS)
    return policy_from_dict(data, source=f"{config.policy_name} (eval budget {max_tokens} tokens)")


def _prompts(tokenizer: Any, policy: Any, questions: Sequence[EvalQuestion]) -> list[list[int]]:
    from orchestrator.prompting import build_prompt

    template = policy.prompt.render("{question}")
    return [build_prompt(tokenizer, q.question, template=template, system=policy.prompt.system) for q in questions]


def _row(config: EvalConfig, q: EvalQuestion, answer: str | None, **fields: Any) -> dict[str, Any]:
    from verifiers import answers_match

    return {
        "config": config.id,
        "question_id": q.id,
        "index": q.index,
        "gold": q.gold,
        "answer": answer,
        "correct": answers_match(answer, q.gold) is True,
        **fields,
    }


def majority(answers: Sequence[str | None]) -> tuple[str | None, int]:
    """The most frequent answer (equal values grouped, e.g. '1,200' and '1200'); ties go to the earliest.

    Missing answers do not vote. Returns the answer and its vote count.

    >>> majority(["7", "8", "7.0", None])
    ('7', 2)
    """
    groups: list[tuple[str, int]] = []
    for a in answers:
        if a is None:
            continue
        for i, (rep, count) in enumerate(groups):
            if answers_agree(rep, a):
                groups[i] = (rep, count + 1)
                break
        else:
            groups.append((a, 1))
    if not groups:
        return None, 0
    best = max(range(len(groups)), key=lambda i: (groups[i][1], -i))
    return groups[best]


def _chunks(items: Sequence[EvalQuestion], size: int) -> list[Sequence[EvalQuestion]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


Sink = Callable[[dict[str, Any]], None]


@dataclass
class GreedyBatch:
    """Plain greedy answers to a few questions that advanced together, and what they cost."""

    questions: Sequence[EvalQuestion]
    results: list[Any]  # PlainResult, one per question
    seconds: float  # wall time of the batch
    cpu_seconds: float  # process CPU time of the batch


def greedy_batches(
    loaded: Any, policy: Any, questions: Sequence[EvalQuestion], *, batch: int, max_tokens: int
) -> Iterator[GreedyBatch]:
    """Greedy answers under ``policy``'s prompt, ``batch`` questions at a time, each as one step (no step
    boundary: rows do not wait for one another at every line)."""
    from orchestrator.generation import StepGenerator
    from orchestrator.plain import generate_plain
    from orchestrator.steps import Sampling

    gen = StepGenerator(loaded.model, loaded.tokenizer, boundary="none", stop_strings=policy.steps.stop_strings)
    sampling = Sampling(temperature=0.0, max_step_tokens=max_tokens)
    for chunk in _chunks(questions, batch):
        started, cpu = time.perf_counter(), time.process_time()
        prompts = _prompts(loaded.tokenizer, policy, chunk)
        results = generate_plain(gen, prompts, max_steps=1, max_tokens=max_tokens, sampling=sampling)
        yield GreedyBatch(chunk, results, time.perf_counter() - started, time.process_time() - cpu)


def run_plain(
    loaded: Any,
    config: EvalConfig,
    questions: Sequence[EvalQuestion],
    sink: Sink,
    *,
    batch: int,
    max_tokens: int,
    seed: int,
) -> None:
    """Greedy answers, ``batch`` questions advancing together; wall time is shared out per question."""
    from verifiers import extract_answer

    policy = _policy(config, max_tokens)
    for chunk in greedy_batches(loaded, policy, questions, batch=batch, max_tokens=max_tokens):
        share = chunk.seconds / len(chunk.questions)
        cpu_share = chunk.cpu_seconds / len(chunk.questions)
        for q, res in zip(chunk.questions, chunk.results, strict=True):
            answer = extract_answer(res.text, strategies=policy.final.answer_strategies)
            sink(
                _row(
                    config,
                    q,
                    answer,
                    tokens=res.tokens,
                    tokens_kept=res.tokens,
                    seconds=share,
                    cpu_seconds=cpu_share,
                    batch=len(chunk.questions),
                    finished=res.finished,
                    text=res.text,
                )
            )


def run_self_consistency(
    loaded: Any,
    config: EvalConfig,
    questions: Sequence[EvalQuestion],
    sink: Sink,
    *,
    batch: int,
    max_tokens: int,
    seed: int,
    temperature: float = SC_TEMPERATURE,
) -> None:
    """``k`` sampled chains per question (one batched call, seeds ``seed + i``), majority vote of answers."""
    from orchestrator.generation import StepGenerator
    from orchestrator.steps import Sampling
    from verifiers import extract_answer
    from verifiers.answers import STATED_STRATEGIES

    policy = _policy(config, max_tokens)
    gen = StepGenerator(loaded.model, loaded.tokenizer, boundary="none", stop_strings=policy.steps.stop_strings)
    sampling = Sampling(temperature=temperature, top_p=SC_TOP_P, seed=seed, max_step_tokens=max_tokens)
    per_batch = max(1, batch // config.k)  # rows in flight = questions x chains
    for chunk in _chunks(questions, per_batch):
        started, cpu = time.perf_counter(), time.process_time()
        session = gen.start(_prompts(loaded.tokenizer, policy, chunk))
        chains = gen.propose(session, n=config.k, sampling=sampling)
        gen.reject(session)
        share = (time.perf_counter() - started) / len(chunk)
        cpu_share = (time.process_time() - cpu) / len(chunk)
        for q, cands in zip(chunk, chains, strict=True):
            votes = [extract_answer(c.text, strategies=policy.final.answer_strategies) for c in cands]
            answer, count = majority(votes)
            winner = next(
                (c.text for c, v in zip(cands, votes, strict=True) if v is not None and answers_agree(v, answer)),
                cands[0].text if cands else "",
            )
            sink(
                _row(
                    config,
                    q,
                    answer,
                    tokens=sum(len(c) for c in cands),
                    tokens_kept=sum(len(c) for c in cands),
                    seconds=share,
                    cpu_seconds=cpu_share,
                    batch=len(chunk) * config.k,
                    votes=votes,
                    vote_count=count,
                    chains_finished=[c.finished for c in cands],  # a cut chain's vote may be no answer at all
                    # each chain's vote where its text states it (strict scoring votes with these alone)
                    votes_stated=[
                        v if extract_answer(c.text, strategies=STATED_STRATEGIES) else None
                        for c, v in zip(cands, votes, strict=True)
                    ],
                    finished=all(c.finished for c in cands),
                    text=winner,
                )
            )


def run_orchestrated(
    loaded: Any,
    config: EvalConfig,
    questions: Sequence[EvalQuestion],
    sink: Sink,
    *,
    batch: int,
    max_tokens: int,
    seed: int,
) -> None:
    """:meth:`Orchestrator.solve` per question under the configuration's policy, ``batch`` solves at once
    (their steps generated as one batch); rows are written as solves finish, time shared out among them."""
    from orchestrator.api import Orchestrator

    policy = _policy(config, max_tokens)
    orch = Orchestrator(loaded, policy=policy)
    texts = [q.question for q in questions]
    for done in orch.solve_iter(texts, concurrency=batch, policy=policy, seed=seed):
        if done.error is not None:
            raise done.error
        res = done.result
        assert res is not None
        sink(
            _row(
                config,
                questions[done.index],
                res.answer,
                tokens=res.tokens_spent,
                tokens_kept=res.tokens,
                seconds=done.seconds,
                cpu_seconds=done.cpu_seconds,
                batch=min(batch, len(questions)),
                interventions=dict(res.interventions),
                escalations=res.escalations,
                corrections=res.corrections,
                steps=len(res.steps),
                resolution=res.final.get("resolution"),
                text=res.text,
            )
        )


RUNNERS: dict[str, Callable[..., None]] = {
    "plain": run_plain,
    "sc": run_self_consistency,
    "orchestrated": run_orchestrated,
}
