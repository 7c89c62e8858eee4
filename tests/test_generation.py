"""StepGenerator on tiny random models: equal to HF generate, batched equal to alone, cache kept honest."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from orchestrator.decoding import inverse_cdf, sample_tokens, sampling_probs
from orchestrator.errors import GenerationError, InputError
from orchestrator.generation import StepGenerator
from orchestrator.steps import Sampling
from tests.tiny import ARCHS, byte_tokenizer, tiny_model

PROMPT = "Q: Tom has 12 boxes of 4 pens. How many pens?\nA:"


@pytest.fixture(scope="module")
def tok():  # type: ignore[no-untyped-def]
    return byte_tokenizer()


def hf_greedy(model, tok, prompt: str, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    ids = tok(prompt).input_ids
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=n,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )
    return list(out[0, len(ids) :].tolist())


def run_steps(gen: StepGenerator, prompt: str, total: int, sampling: Sampling | None = None) -> list[list[int]]:
    session = gen.start(prompt)
    steps: list[list[int]] = []
    produced = 0
    while produced < total:
        budget = Sampling(max_step_tokens=total - produced) if sampling is None else sampling
        step = gen.propose(session, sampling=budget)[0][0]
        gen.accept(session, 0)
        steps.append(step.token_ids)
        produced += len(step)
        if step.finished:
            break
    return steps


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_steps_equal_hf_generate_across_boundaries(arch: str, tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(arch)
    ref = hf_greedy(model, tok, PROMPT, 48)
    # A stop string that occurs several times in the reference, so the text crosses many step boundaries.
    stop = tok.decode([Counter(ref).most_common(1)[0][0]])
    gen = StepGenerator(model, tok, boundary="none", stop_strings=[stop])
    steps = run_steps(gen, PROMPT, 48)
    assert len(steps) >= 3
    flat = [t for s in steps for t in s]
    assert flat == ref[: len(flat)]
    assert len(flat) == 48


def newline_prone_model(tok, bias: float = 10.0):  # type: ignore[no-untyped-def]
    """A tiny Llama whose greedy text is one byte, then newlines (bias measured: '\\x1e\\n\\n\\n...')."""
    model = tiny_model("llama")
    head = torch.nn.Linear(model.lm_head.in_features, model.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tok("\n").input_ids[0]] = bias
    model.lm_head = head
    return model


def test_newline_boundary_ends_a_step_at_the_first_newline_after_content(tok) -> None:  # type: ignore[no-untyped-def]
    model = newline_prone_model(tok)
    ref = tok.decode(hf_greedy(model, tok, PROMPT, 6))
    assert ref.startswith("\x1e\n\n")  # the model as measured; the assertions below rely on it
    gen = StepGenerator(model, tok, boundary="newline")
    session = gen.start(PROMPT)
    first = gen.propose(session, sampling=Sampling(max_step_tokens=10))[0][0]
    assert (first.text, first.stop_reason) == ("\x1e\n", "boundary")
    gen.accept(session, 0)
    # Only newlines follow: with no content they never end a step, so the length cap does.
    second = gen.propose(session, sampling=Sampling(max_step_tokens=5))[0][0]
    assert (second.text, second.stop_reason) == ("\n" * 5, "max_tokens")


def test_blank_line_boundary_waits_for_an_empty_line(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(newline_prone_model(tok), tok, boundary="blank_line")
    step = gen.propose(gen.start(PROMPT), sampling=Sampling(max_step_tokens=10))[0][0]
    assert (step.text, step.stop_reason) == ("\x1e\n\n", "boundary")


def test_signals_are_consistent_per_token(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("qwen2"), tok, boundary="none")
    session = gen.start(PROMPT)
    step = gen.propose(session, sampling=Sampling(max_step_tokens=12))[0][0]
    assert len(step.token_ids) == len(step.logprobs) == len(step.entropies) == len(step.margins) == 12
    assert step.stop_reason == "max_tokens"
    for lp, top1, margin, ent in zip(step.logprobs, step.top1_probs, step.margins, step.entropies, strict=True):
        assert lp <= 0.0
        assert 0.0 <= margin <= top1 <= 1.0
        assert abs(lp - torch.tensor(top1).log().item()) < 1e-4  # greedy picks the top-1 token
        assert ent >= 0.0
    assert "".join(step.tokens) == step.text == tok.decode(step.token_ids)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_batched_candidates_equal_each_candidate_alone(arch: str, tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(arch)
    gen = StepGenerator(model, tok, boundary="newline")
    sampling = Sampling(temperature=1.0, top_p=0.9, seed=11, max_step_tokens=16)
    together = gen.propose(gen.start(PROMPT), n=4, sampling=sampling)[0]
    assert len({tuple(c.token_ids) for c in together}) > 1  # sampling really varies across candidates
    for i, cand in enumerate(together):
        alone_sampling = Sampling(temperature=1.0, top_p=0.9, seed=11 + i, max_step_tokens=16)
        alone = gen.propose(gen.start(PROMPT), n=1, sampling=alone_sampling)[0][0]
        assert alone.token_ids == cand.token_ids
        assert alone.logprobs == pytest.approx(cand.logprobs, abs=1e-4)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3"])
def test_batched_questions_equal_each_question_alone(arch: str, tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model(arch)
    gen = StepGenerator(model, tok, boundary="none", stop_strings=["e", "a", "\n"])
    prompts = [PROMPT, "Q: 3 + 4 =", "Q: A farmer has 17 sheep and buys 5 more. How many now?\nA: Let's see."]
    session = gen.start(prompts)
    for _ in range(4):
        gen.propose(session, sampling=Sampling(max_step_tokens=10))
        gen.accept(session, 0)
    for q, prompt in enumerate(prompts):
        alone = gen.start(prompt)
        for _ in range(4):
            gen.propose(alone, sampling=Sampling(max_step_tokens=10))
            gen.accept(alone, 0)
        assert alone.token_ids() == session.token_ids(q), f"question {q}"


@pytest.mark.parametrize("boundary", ["none", "newline", "numbered_item"])
def test_rows_that_ended_leave_the_batch_and_results_stay_equal(boundary: str, tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("llama"), tok, boundary=boundary)
    prompts = [PROMPT, "1. Q: 3 + 4 =", "Q: A farmer has 17 sheep and buys 5 more.\n1. He", "2 x"]
    budgets = [Sampling(max_step_tokens=m) for m in (3, 24, 9, 16)]  # rows end at different tokens
    widths: list[int] = []
    forward = gen._forward

    def counting(input_ids, positions, mask, cache, last_only=False):  # type: ignore[no-untyped-def]
        widths.append(int(input_ids.shape[0]))
        return forward(input_ids, positions, mask, cache, last_only)

    gen._forward = counting  # type: ignore[method-assign]
    sessions = [gen.start(p) for p in prompts]
    widths.clear()
    for _ in range(3):
        gen.propose_together([(s, 1, b) for s, b in zip(sessions, budgets, strict=True)])
        for s in sessions:
            gen.accept(s, 0)
    assert max(widths) == len(prompts) and min(widths) == 1  # rows that ended stopped costing compute
    gen._forward = forward  # type: ignore[method-assign]
    for prompt, budget, merged in zip(prompts, budgets, sessions, strict=True):
        alone = gen.start(prompt)
        for _ in range(3):
            gen.propose(alone, sampling=budget)
            gen.accept(alone, 0)
        assert alone.token_ids() == merged.token_ids()


def test_reject_leaves_the_prefix_and_its_cache_unchanged(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("llama"), tok, boundary="none", stop_strings=["\n"])
    session = gen.start(PROMPT)
    before = session.state.next_logits.clone()
    length = session.state.length
    gen.propose(session, n=3, sampling=Sampling(temperature=1.0, seed=1, max_step_tokens=8))
    gen.reject(session)
    assert session.state.length == length
    assert torch.equal(session.state.next_logits, before)
    assert session.accepted_steps == [[]]
    # And greedy continuation after the rejection equals a fresh greedy run.
    step = gen.propose(session, sampling=Sampling(max_step_tokens=8))[0][0]
    fresh = StepGenerator(gen.model, tok, boundary="none", stop_strings=["\n"])
    assert step.token_ids == fresh.propose(fresh.start(PROMPT), sampling=Sampling(max_step_tokens=8))[0][0].token_ids


def test_accepting_a_candidate_extends_the_cache_with_its_tokens(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("qwen2")
    gen = StepGenerator(model, tok, boundary="none")
    session = gen.start(PROMPT)
    cands = gen.propose(session, n=3, sampling=Sampling(temperature=1.2, seed=5, max_step_tokens=6))[0]
    gen.accept(session, 2)
    assert session.token_ids() == tok(PROMPT).input_ids + cands[2].token_ids
    # The next-token logits now equal a fresh forward over prompt + the accepted candidate.
    full = torch.tensor([session.token_ids()])
    expected = model(full).logits[0, -1]
    assert torch.allclose(session.state.next_logits[0], expected, atol=1e-4)


def test_accept_text_reencodes_only_from_the_edit_point(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("llama")
    gen = StepGenerator(model, tok, boundary="none")
    session = gen.start(PROMPT)
    step = gen.propose(session, sampling=Sampling(max_step_tokens=10))[0][0]
    edited_text = step.text[:4] + " 12 x 4 = 48\n"
    edited = gen.accept_text(session, edited_text)
    assert edited.meta["kept_tokens"] == len(tok(step.text[:4]).input_ids)
    assert edited.meta["reencoded_tokens"] == len(tok(" 12 x 4 = 48\n").input_ids)
    assert session.text() == edited_text
    full = torch.tensor([session.token_ids()])
    expected = model(full).logits[0, -1]
    assert torch.allclose(session.state.next_logits[0], expected, atol=1e-4)
    assert session.state.length == len(session.token_ids())


def test_eos_finishes_a_question_and_it_stops_advancing(tok) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model("llama")
    with torch.no_grad():  # make EOS the most likely token everywhere
        model.lm_head.bias = None
        model.lm_head.weight[tok.eos_token_id] = model.lm_head.weight.abs().max() * 50
    gen = StepGenerator(model, tok)
    session = gen.start([PROMPT, "Q: 1 + 1 ="])
    steps = gen.propose(session)
    assert all(s[0].finished and s[0].stop_reason == "eos" for s in steps)
    gen.accept(session, 0)
    assert session.finished == [True, True]
    assert gen.propose(session) == [[], []]


def test_bad_arguments_are_clear_errors(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("llama"), tok)
    with pytest.raises(InputError, match="empty"):
        gen.start("")
    session = gen.start(PROMPT)
    with pytest.raises(InputError, match="propose"):
        gen.accept(session, 0)
    gen.propose(session, n=2, sampling=Sampling(temperature=1.0, seed=0, max_step_tokens=4))
    with pytest.raises(InputError, match="candidate 5"):
        gen.accept(session, 5)
    with pytest.raises(InputError, match="boundary"):
        StepGenerator(gen.model, tok, boundary="sentence")


def test_context_limit_ends_the_step_instead_of_overflowing(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("llama"), tok, boundary="none", max_context=len(tok(PROMPT).input_ids) + 5)
    session = gen.start(PROMPT)
    step = gen.propose(session, sampling=Sampling(max_step_tokens=50))[0][0]
    assert len(step) == 4
    assert step.stop_reason == "max_tokens"


@pytest.mark.parametrize(
    ("after_newline", "verdict"),
    [
        ("2. Next, we add", "item"),  # a numbered item starts: the step ended at the newline
        ("Step 3:", "item"),
        ("### Step 2", "item"),
        ("**Step 2", "item"),
        ("2", "open"),  # "2." or "2 apples"? wait for the next token
        ("2.", "open"),
        ("   ", "open"),
        ("\n", "blank"),  # a blank line ends the item where it is
        ("12 apples remain", "same"),  # the item goes on
        ("- a bullet inside the item", "same"),
        ("1.5 is the rate", "same"),
        ("\\[ 9 \\times 2 = 18 \\]", "same"),  # the display block that belongs to the item
    ],
)
def test_numbered_item_boundary_reads_the_start_of_the_next_line(after_newline: str, verdict: str) -> None:
    from orchestrator.decoding import next_line_verdict

    assert next_line_verdict(after_newline) == verdict


def test_greedy_agreement_counts_the_draft_tokens_the_model_would_write_itself(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("qwen2"), tok, boundary="none")
    session = gen.start(PROMPT)
    draft = gen.propose(session, sampling=Sampling(max_step_tokens=12))[0][0]
    assert gen.greedy_agreement(session, draft.token_ids) == 12  # its own greedy draft agrees fully
    altered = [*draft.token_ids[:5], (draft.token_ids[5] + 1) % 256, *draft.token_ids[6:]]
    assert gen.greedy_agreement(session, altered) == 5
    assert session.pending is not None  # nothing was accepted or dropped by checking


def test_a_forced_prefix_continues_exactly_as_greedy_would(tok) -> None:  # type: ignore[no-untyped-def]
    gen = StepGenerator(tiny_model("llama"), tok, boundary="none")
    full = gen.propose(gen.start(PROMPT), sampling=Sampling(max_step_tokens=14))[0][0]
    session = gen.start(PROMPT)
    step = gen.propose(session, sampling=Sampling(max_step_tokens=14), prefix=full.token_ids[:6])[0][0]
    assert step.token_ids == full.token_ids
    assert step.logprobs == pytest.approx(full.logprobs, abs=1e-4)  # teacher-forced signals match generated ones
    gen.accept(session, 0)
    assert session.token_ids() == tok(PROMPT).input_ids + full.token_ids


def test_verify_mode_escalation_with_every_layer_restored_is_lossless(tmp_path, tok) -> None:  # type: ignore[no-untyped-def]
    """Quantized draft, then verify under all-layer copies: the kept step is the reference model's greedy step."""
    from orchestrator.precision import LayerPrecision
    from orchestrator.quantize import parse_quant, simulate_quantization_
    from tests.tiny import save_tiny

    folder = save_tiny("qwen2", tmp_path / "ref")
    reference = StepGenerator(tiny_model("qwen2"), tok, boundary="none")
    want = reference.propose(reference.start(PROMPT), sampling=Sampling(max_step_tokens=24))[0][0]

    working = tiny_model("qwen2")
    simulate_quantization_(working, parse_quant("rtn-int2", group_size=16))
    gen = StepGenerator(working, tok, boundary="none")
    session = gen.start(PROMPT)
    draft = gen.propose(session, sampling=Sampling(max_step_tokens=24))[0][0]
    assert draft.token_ids != want.token_ids  # 2-bit weights really change the step
    copies = LayerPrecision(working, folder, range(working.config.num_hidden_layers))
    with copies.escalated():
        agreed = gen.greedy_agreement(session, draft.token_ids)
        # The prompt's cache came from the quantized model; a fresh session gives the lossless reference.
        fresh = gen.start(PROMPT)
        agreed_fresh = gen.greedy_agreement(fresh, draft.token_ids)
        kept = gen.propose(fresh, sampling=Sampling(max_step_tokens=24), prefix=draft.token_ids[:agreed_fresh])[0][0]
    assert agreed < len(draft.token_ids)
    assert kept.token_ids == want.token_ids


def test_plain_generation_stops_each_question_at_its_token_budget(tok) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.plain import generate_plain

    gen = StepGenerator(tiny_model("llama"), tok, boundary="none", stop_strings=["e", "a"])
    prompts = [tok(PROMPT).input_ids, tok("Q: 3 + 4 =").input_ids]
    results = generate_plain(gen, prompts, max_steps=50, max_tokens=12)
    assert [r.tokens for r in results] == [12, 12]
    alone = generate_plain(gen, prompts[1:], max_steps=50, max_tokens=12)[0]
    assert alone.text == results[1].text


def test_split_steps_cuts_at_newlines_after_content() -> None:
    from orchestrator.plain import split_steps
    from orchestrator.steps import Step

    pieces = ["\n", "First", " 3", " x", " 4", "\n", "\n", "So", " 12", ".\n", "Done"]
    n = len(pieces)
    whole = Step("".join(pieces), list(range(n)), pieces, [-0.1] * n, [0.2] * n, [0.5] * n, [0.9] * n, "eos", True)
    steps = split_steps(whole)
    assert [s.text for s in steps] == ["\nFirst 3 x 4\n", "\nSo 12.\n", "Done"]
    assert [s.token_ids for s in steps] == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9], [10]]
    assert [s.finished for s in steps] == [False, False, True]
    assert [s.text for s in split_steps(whole, "blank_line")] == ["\nFirst 3 x 4\n\n", "So 12.\nDone"]


def test_continuous_plain_generation_gives_the_lockstep_steps(tok) -> None:  # type: ignore[no-untyped-def]
    from orchestrator.plain import generate_plain

    gen = StepGenerator(newline_prone_model(tok), tok, boundary="newline")
    prompts = [tok(PROMPT).input_ids]
    lock = generate_plain(gen, prompts, max_steps=5, max_tokens=12)[0]
    cont = generate_plain(gen, prompts, max_steps=5, max_tokens=12, lockstep=False)[0]
    assert [s.text for s in cont.steps] == [s.text for s in lock.steps] == ["\x1e\n", "\n" * 10]


def _nucleus_row_by_row(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Top-p written the plain way, one row: keep the most likely tokens until their mass reaches ``top_p``."""
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p >= 1.0:
        return probs
    sorted_p, order = probs.sort(descending=True)
    n = int((sorted_p.cumsum(0) - sorted_p < top_p).sum().clamp(min=1))
    kept = torch.zeros_like(probs)
    kept[order[:n]] = sorted_p[:n]
    return kept / kept.sum()


def test_draws_stay_in_the_nucleus_and_replay_from_the_seed() -> None:
    logits = torch.randn(6, 300, generator=torch.Generator().manual_seed(0)) * 3
    settings = [(0.3, 1.0), (0.7, 0.9), (1.0, 0.5), (1.3, 0.95), (0.7, 0.1), (2.0, 1.0)]
    dists = [sampling_probs(logits[i], t, p) for i, (t, p) in enumerate(settings)]
    for i, (t, p) in enumerate(settings):
        torch.testing.assert_close(dists[i], _nucleus_row_by_row(logits[i], t, p), rtol=0, atol=1e-7)
    assert int((dists[4] > 0).sum()) < int((dists[1] > 0).sum()) < 300  # the nucleus shrinks with top_p
    first = sample_tokens(dists, [torch.Generator().manual_seed(10 + i) for i in range(6)])
    gens = [torch.Generator().manual_seed(10 + i) for i in range(6)]
    draws = [sample_tokens(dists, gens) for _ in range(300)]
    assert draws[0] == first  # the same seeds draw the same tokens
    assert len({d[5] for d in draws}) > 50  # a wide row really varies
    for d in draws:
        assert all(dists[i][tok] > 0 for i, tok in enumerate(d))  # never a token outside the nucleus


def test_the_inverse_cdf_gives_each_token_its_share_of_the_unit_interval() -> None:
    """A grid of uniforms lands on each token in proportion to its probability, to within one grid cell:
    exact and deterministic, where a test of random draws could only bound the error."""
    probs = torch.softmax(torch.randn(3, 50, generator=torch.Generator().manual_seed(1)) * 2, dim=-1)
    probs[1, 10:20] = 0.0  # zero-probability tokens amid others
    probs[2] = 0.0
    probs[2, 7] = 0.25  # one token, unnormalised mass
    n = 20_000
    grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    counts = torch.zeros(3, 50, dtype=torch.float64)
    for row in range(3):
        tokens = inverse_cdf(probs[row].expand(n, 50), grid)
        counts[row] = torch.bincount(torch.tensor(tokens), minlength=50).double() / n
    mass = probs.double() / probs.double().sum(-1, keepdim=True)
    assert float((counts - mass).abs().max()) <= 1.0 / n + 1e-12
    assert counts[1, 10:20].sum() == 0 and counts[2, 7] == 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_logits_raise_instead_of_picking_a_token(bad: float) -> None:
    with pytest.raises(GenerationError, match="not finite"):
        inverse_cdf(torch.tensor([[0.5, 0.5], [bad, 0.1]]), torch.tensor([0.3, 0.3], dtype=torch.float64))
    model = tiny_model("llama")
    model.lm_head.register_forward_hook(lambda _m, _i, out: out.index_fill(-1, torch.tensor([3]), bad))
    gen = StepGenerator(model, byte_tokenizer(), boundary="newline")
    for sampling in (Sampling(max_step_tokens=4), Sampling(temperature=0.7, seed=1, max_step_tokens=4)):
        with pytest.raises(GenerationError, match="not finite"):
            gen.propose(gen.start("Q: 2 + 2 ="), n=2, sampling=sampling)


def test_a_temperature_hook_mixing_greedy_and_sampled_rows_gives_each_row_what_it_gives_alone() -> None:
    gen = StepGenerator(tiny_model("qwen2"), byte_tokenizer(), boundary="none")
    calls: list[int] = []

    def hook(ids: list[int], greedy: int) -> float:  # greedy on even lengths, sampled hot on odd ones
        calls.append(len(ids))
        return 0.0 if len(ids) % 2 == 0 else 1.5

    sampling = Sampling(temperature=0.0, seed=4, max_step_tokens=10, temperature_hook=hook)
    prompts = ["Q: 2 + 2 =", "Q: A farmer has 17 sheep and buys 5 more. How many now?\nA:", "Q: 9 x 9"]
    together = gen.propose(gen.start(prompts), n=3, sampling=sampling)
    for q, prompt in enumerate(prompts):
        alone = gen.propose(gen.start(prompt), n=3, sampling=sampling)[0]
        assert [c.token_ids for c in together[q]] == [c.token_ids for c in alone]
    greedy = gen.propose(gen.start(prompts[1]), n=3, sampling=Sampling(max_step_tokens=10))[0]
    assert len({tuple(c.token_ids) for c in together[1]}) > 1  # the hot positions really sampled
    assert all(c.token_ids[0] == greedy[0].token_ids[0] for c in together[1])  # position 0 was greedy
    assert {0, 1} <= {n % 2 for n in calls}


def test_prefills_project_only_their_last_position_onto_the_vocabulary() -> None:
    model = tiny_model("qwen2")
    widths: list[int] = []
    model.lm_head.register_forward_hook(lambda _m, args, _out: widths.append(args[0].shape[1]))
    tok = byte_tokenizer()
    gen = StepGenerator(model, tok, boundary="newline")
    prompt = "Q: A farmer has 17 sheep and buys 5 more. How many now?\nA:"
    session = gen.start(prompt)
    assert widths == [1]  # the prompt's other positions never reach the vocabulary projection
    ids = torch.tensor([tok(prompt)["input_ids"]])
    with torch.no_grad():
        torch.testing.assert_close(session.state.next_logits[0], model(ids).logits[0, -1].float())
    widths.clear()
    gen.force_accept(session, "17 + 5 = 22\n")
    assert widths == [1]
    gen.propose(session, sampling=Sampling(max_step_tokens=3))
    assert widths == [1, 1, 1, 1]  # and one per generated token
