"""Every path of the solve graph, driven by a scripted step stream (exact steps, chosen confidences)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import structlog

from orchestrator.api import SolveResult, run_solve
from orchestrator.graph import NODE_NAMES, build_graph
from orchestrator.verdicts import replay_answer
from policies import Policy, policy_from_dict
from tests.fakes import Crash, Draft, ScriptedStream

Q = "Tom has 3 bags with 4 apples each. How many apples?"
LAYERS = [2, 3]


def policy(**changes: Any) -> Policy:
    return policy_from_dict({"extends": "default", "name": "test", **changes})


def solve(script: list[list[Draft]], pol: Policy | None = None, **kwargs: Any) -> tuple[SolveResult, ScriptedStream]:
    stream = ScriptedStream(script)
    result = run_solve(Q, [1, 2, 3], stream, pol or policy(), escalation_layers=LAYERS, **kwargs)
    assert stream.cursor == len(stream.script), "the graph used fewer proposals than scripted"
    return result, stream


SURE_RIGHT = Draft("Each bag has 4 apples, so 3 x 4 = 12 apples.\n")
FINAL_12 = Draft("The answer is \\boxed{12}.", finished=True)
UNSURE_WRONG = Draft("So 3 x 4 = 13 apples.\n", weak={"13": 0.2})
UNSURE_VAGUE = Draft("So there are 3 x 4 apples in all.\n", weak={"3": 0.15, "4": 0.15})  # nothing to check


def test_confident_correct_steps_are_accepted_without_intervention() -> None:
    result, stream = solve([[SURE_RIGHT], [FINAL_12]])
    assert result.answer == "12"
    assert [s["text"] for s in result.steps] == [SURE_RIGHT.text, FINAL_12.text]
    assert result.interventions == {}
    assert result.steps[0]["verdicts"][0]["status"] == "correct"
    assert [c[0] for c in stream.calls] == ["propose", "accept", "propose", "accept"]
    assert result.tokens == sum(s["n_tokens"] for s in result.steps)


def test_low_confidence_resamples_and_keeps_the_verified_candidate() -> None:
    resampled = [
        Draft("So 3 x 4 = 13 apples.\n", p=0.97),  # confident but wrong: loses on the verdict
        Draft("So 3 x 4 = 12 apples.\n", p=0.9),  # right and confident: chosen
        Draft("So 3 x 4 = 12.\n", p=0.7),  # right, less confident
        Draft("Hmm.\n", p=0.99),  # cannot be judged
    ]
    result, stream = solve([[UNSURE_WRONG], resampled, [FINAL_12]])
    assert result.steps[0]["text"] == "So 3 x 4 = 12 apples.\n"
    assert result.steps[0]["origin"] == "resample"
    assert result.interventions == {"resample": 1}
    assert ("propose", {"n": 4, "temperature": 0.7, "escalated": False}) in stream.calls
    assert ("accept", 1) in stream.calls
    rejected = [n for n in result.trace.nodes if n["kind"] == "candidate"]
    assert len(rejected) == 4  # the greedy draft and three samples


def test_confidence_still_low_after_resampling_escalates_the_step() -> None:
    pol = policy(resample={"n_candidates": 2, "max_attempts": 1})
    escalated = Draft("So 3 x 4 = 12 apples.\n", p=0.99)
    result, stream = solve([[UNSURE_VAGUE], [UNSURE_VAGUE, UNSURE_VAGUE], [escalated], [FINAL_12]], pol)
    assert stream.escalated_layers == [LAYERS]
    assert stream.calls[2] == ("propose", {"n": 1, "temperature": 0.0, "escalated": True})
    assert result.steps[0]["text"] == escalated.text
    assert result.steps[0]["origin"] == "escalation"
    assert result.escalations == 1
    assert result.interventions == {"resample": 1, "escalate": 1}
    assert any(n["kind"] == "escalation" and n["data"]["layers"] == LAYERS for n in result.trace.nodes)


def test_very_low_confidence_escalates_at_once_when_the_policy_says_so() -> None:
    pol = policy(escalation={"when": "immediately"}, confidence={"escalate_threshold": 0.5})
    very_unsure = Draft("So 3 x 4 = 13 apples.\n", weak={"13": 0.01, "x": 0.05, "4": 0.1})
    result, stream = solve([[very_unsure], [Draft("So 3 x 4 = 12 apples.\n")], [FINAL_12]], pol)
    assert result.interventions == {"escalate": 1}
    assert stream.escalated_layers == [LAYERS]


def test_no_escalation_without_layers_falls_back_to_accepting() -> None:
    pol = policy(resample={"enabled": False})
    stream = ScriptedStream([[UNSURE_WRONG], [FINAL_12]])
    result = run_solve(
        Q,
        [1],
        stream,
        pol.model_copy(update={"repair": pol.repair.model_copy(update={"on_wrong": "flag"})}),
        escalation_layers=[],
    )
    assert stream.escalated_layers == []
    assert result.steps[0]["flags"] == ["wrong claim kept"]


def test_a_wrong_claim_is_corrected_in_place_and_the_chain_continues_from_it() -> None:
    wrong = Draft("She walked 12 x 4 = 46 miles.\n")
    result, stream = solve([[wrong], [Draft("So she walked \\boxed{48} miles.", finished=True)]])
    assert result.steps[0]["text"] == "She walked 12 x 4 = 48 miles.\n"
    assert result.steps[0]["corrected_from"] == wrong.text
    assert result.steps[0]["verdicts"][0]["status"] == "correct"  # re-verified after the fix
    assert ("accept_text", "She walked 12 x 4 = 48 miles.\n") in stream.calls
    assert stream.accepted[0] == "She walked 12 x 4 = 48 miles.\n"  # the model continues from the fix
    assert result.corrections == 1
    assert result.answer == "48"
    fix = next(n for n in result.trace.nodes if n["kind"] == "correction")
    assert fix["data"]["before"] == wrong.text


@pytest.mark.parametrize(
    ("cut", "kept"),
    [
        (True, "So 175 - 25 = 1"),  # the limit may have cut "150" short: the last number is not judged
        (False, "So 175 - 25 = 150"),  # the same text ended by the model is a wrong claim, corrected
    ],
)
def test_a_number_cut_by_the_token_limit_is_not_corrected(cut: bool, kept: str) -> None:
    result, _ = solve([[Draft("So 175 - 25 = 1", cut=cut)], [FINAL_12]])
    assert result.steps[0]["text"] == kept
    assert result.corrections == (0 if cut else 1)


def test_a_cut_step_still_has_its_finished_claims_corrected() -> None:
    result, _ = solve([[Draft("So 3 x 4 = 13 apples, and 13 + 5 = 1", cut=True)], [FINAL_12]])
    assert result.steps[0]["text"] == "So 3 x 4 = 12 apples, and 13 + 5 = 1"  # the cut word is kept as written


def test_flag_policy_keeps_the_wrong_claim_and_marks_it() -> None:
    pol = policy(repair={"on_wrong": "flag", "max_repairs_per_step": 0})
    wrong = Draft("She walked 12 x 4 = 46 miles.\n")
    result, _ = solve([[wrong], [Draft("\\boxed{46}", finished=True)]], pol)
    assert result.steps[0]["text"] == wrong.text
    assert result.steps[0]["flags"] == ["wrong claim kept"]
    assert result.interventions == {"flag": 1}
    assert result.steps[0]["verdicts"][0]["status"] == "wrong"


def test_resample_repair_draws_new_candidates_for_a_wrong_step() -> None:
    pol = policy(repair={"on_wrong": "resample"}, resample={"n_candidates": 2})
    wrong = Draft("She walked 12 x 4 = 46 miles.\n")
    fixed = [Draft("She walked 12 x 4 = 47 miles.\n"), Draft("She walked 12 x 4 = 48 miles.\n")]
    result, _ = solve([[wrong], fixed, [Draft("\\boxed{48}", finished=True)]], pol)
    assert result.steps[0]["text"] == "She walked 12 x 4 = 48 miles.\n"
    assert result.interventions == {"repair_resample": 1, "resample": 1}


@pytest.mark.parametrize(
    ("on_mismatch", "answer", "resolution"),
    [
        ("prefer_chain", "12", "chain preferred"),  # the verified chain wins
        ("flag", "13", "flagged"),  # stated answer kept, disagreement recorded
        ("prefer_stated", "13", "stated answer kept"),
        ("prefer_supported", "12", "chain preferred"),  # no checked step computed 13
    ],
)
def test_final_answer_that_disagrees_with_the_chain_is_resolved_per_policy(
    on_mismatch: str, answer: str, resolution: str
) -> None:
    pol = policy(final={"on_mismatch": on_mismatch})
    result, _ = solve([[SURE_RIGHT], [Draft("The answer is \\boxed{13}.", finished=True)]], pol)
    assert result.answer == answer
    assert result.final["stated"] == "13"
    assert result.final["chain_value"] == "12"
    assert resolution in result.final["resolution"]


CHECK_AFTER = Draft("Check: 12 / 3 = 4 apples a bag.\n")  # a check after the result: its value comes last


@pytest.mark.parametrize(
    ("on_mismatch", "answer", "resolution"),
    [
        ("prefer_supported", "12", "a checked step computed it"),
        ("prefer_chain", "4", "chain preferred"),  # the side computation overrides the right answer
    ],
)
def test_a_stated_answer_that_a_checked_step_computed_survives_a_later_side_computation(
    on_mismatch: str, answer: str, resolution: str
) -> None:
    pol = policy(final={"on_mismatch": on_mismatch})
    result, _ = solve([[SURE_RIGHT], [CHECK_AFTER], [FINAL_12]], pol)
    assert (result.final["stated"], result.final["chain_value"]) == ("12", "4")
    assert result.answer == answer
    assert resolution in result.final["resolution"]


def test_prefer_supported_takes_the_corrected_result_over_a_stated_answer_that_repeats_a_slip() -> None:
    pol = policy(final={"on_mismatch": "prefer_supported"}, repair={"on_wrong": "correct"})
    slip = Draft("Each bag has 4 apples, so 3 x 4 = 13 apples.\n")  # sure of itself, and wrong
    result, _ = solve([[slip], [Draft("The answer is \\boxed{13}.", finished=True)]], pol)
    assert result.steps[0]["text"] == "Each bag has 4 apples, so 3 x 4 = 12 apples.\n"
    assert result.answer == "12"  # 13 was only ever written, never computed


@pytest.mark.parametrize("on_mismatch", ["prefer_supported", "prefer_chain", "prefer_stated", "flag"])
def test_replaying_a_finished_chain_gives_the_answer_its_solve_gave(on_mismatch: str) -> None:
    pol = policy(final={"on_mismatch": on_mismatch})
    result, _ = solve([[SURE_RIGHT], [CHECK_AFTER], [FINAL_12]], pol)
    text = "".join(s["text"] for s in result.steps)
    replayed = replay_answer(text, strategies=pol.final.answer_strategies, on_mismatch=on_mismatch)
    assert replayed == (result.answer, result.final["resolution"])


STRATEGIES = ("boxed", "answer_is", "last_number")


@pytest.mark.parametrize(
    ("text", "on_mismatch", "cut", "expected"),
    [
        # a LaTeX fraction is its value, not its denominator: the stated answer agrees with the chain
        ("So \\(\\frac{1}{2}+\\frac{1}{4}=\\frac{3}{4}\\).\nThe answer is \\boxed{\\frac{3}{4}}.", "prefer_chain",
         False, ("\\frac{3}{4}", "stated")),
        # a result written as an expression is its value (10), not its last operand (4)
        ("So 2 x 5 = 6 + 4 apples.\nThe answer is \\boxed{10}.", "prefer_chain", False, ("10", "stated")),
        # the exact value a step computed supports a stated answer written otherwise than the step's rounding
        ("Each share is 16 / 7 = 2.2857 kg.\nCheck: 2 x 7 = 14.\nSo \\boxed{\\frac{16}{7}}.", "prefer_supported",
         False, ("\\frac{16}{7}", "stated answer kept: a checked step computed it")),
        # a last number the text never states (a step number, cut short) is no answer to keep
        ("3 x 4 = 12\nThen 12 / 3 = 4\nStep 12", "prefer_supported", False,
         ("4", "chain preferred over stated answer")),
        # cut at the budget: its last word ("= 32" of "= 320") is not judged, as the solve did not judge it
        ("3 x 4 = 12\nThen 80 x 4 = 32", "prefer_chain", True, ("12", "chain preferred over stated answer")),
        ("3 x 4 = 12\nThen 80 x 4 = 32", "prefer_chain", False, ("320", "chain preferred over stated answer")),
    ],
)  # fmt: skip
def test_replayed_answers_read_fractions_exact_values_statements_and_cut_words(
    text: str, on_mismatch: str, cut: bool, expected: tuple[str, str]
) -> None:
    assert replay_answer(text, strategies=STRATEGIES, on_mismatch=on_mismatch, cut=cut) == expected


def test_step_and_token_limits_end_the_solve() -> None:
    pol = policy(steps={"max_steps": 2})
    result, _ = solve([[Draft("First, 1 + 1 = 2.\n")], [Draft("Then 2 + 2 = 4.\n")]], pol)
    assert len(result.steps) == 2
    assert result.final["stated"] == "4"  # last-number fallback
    assert result.trace.nodes[-1]["kind"] == "answer"


def test_plain_policy_fires_nothing() -> None:
    result, stream = solve([[UNSURE_WRONG], [FINAL_12]], Policy.plain())
    assert result.interventions == {}
    assert result.steps[0]["text"] == UNSURE_WRONG.text
    assert [c[0] for c in stream.calls] == ["propose", "accept", "propose", "accept"]


def test_events_stream_each_decision_and_structlog_records_them() -> None:
    events: list[dict[str, Any]] = []
    with structlog.testing.capture_logs() as logs:
        solve([[Draft("She walked 12 x 4 = 46 miles.\n")], [FINAL_12]], on_event=events.append)
    kinds = [e["event"] for e in events]
    assert kinds == ["monitor", "verify", "correct", "verify", "step", "monitor", "verify", "step", "final"]
    assert {entry["event"] for entry in logs} >= {"monitor", "verify", "correct", "step", "final"}
    step_event = next(e for e in events if e["event"] == "step")
    assert step_event["verdicts"] == ["correct"]


def test_killed_solve_resumes_from_the_checkpoint_with_the_same_result(tmp_path: Path) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    script = [
        [Draft("Each bag has 4 apples.\n")],
        [Draft("She walked 12 x 4 = 46 miles.\n")],  # corrected on the way
        [UNSURE_WRONG],
        [Draft("So 3 x 4 = 12 apples.\n"), Draft("So 3 x 4 = 12.\n"), Draft("Hmm.\n"), Draft("12\n")],
        [FINAL_12],
    ]
    reference = run_solve(Q, [1, 2, 3], ScriptedStream(script), policy(), escalation_layers=LAYERS)

    db = tmp_path / "solves.sqlite"
    with sqlite3.connect(db, check_same_thread=False) as conn:
        saver = SqliteSaver(conn)
        with pytest.raises(Crash):
            run_solve(
                Q,
                [1, 2, 3],
                ScriptedStream(script, crash_at=3),
                policy(),
                escalation_layers=LAYERS,
                checkpointer=saver,
                thread_id="t1",
            )
    with sqlite3.connect(db, check_same_thread=False) as conn:  # a new process would open the file afresh
        resumed_stream = ScriptedStream(script, start=3)
        resumed = run_solve(
            Q,
            [1, 2, 3],
            resumed_stream,
            policy(),
            escalation_layers=LAYERS,
            checkpointer=SqliteSaver(conn),
            thread_id="t1",
        )
    assert ("resync", 2) in resumed_stream.calls  # the prefix was rebuilt from state, not regenerated
    assert [s["text"] for s in resumed.steps] == [s["text"] for s in reference.steps]
    assert resumed.answer == reference.answer == "12"
    assert resumed.interventions == reference.interventions
    assert [n["id"] for n in resumed.trace.nodes] == [n["id"] for n in reference.trace.nodes]


def test_drawn_graph_has_every_node_and_routing_edge() -> None:
    drawn = build_graph().compile().get_graph().draw_mermaid()
    for name in NODE_NAMES:
        assert name in drawn
    for edge in ("monitor -.-> resample", "monitor -.-> escalate", "verify -.-> repair", "accept -.-> propose"):
        assert edge.replace(" ", "") in drawn.replace(" ", "").replace(";", ""), edge


def test_unknown_verifier_in_policy_fails_before_generating() -> None:
    from verifiers.errors import UnknownVerifierError

    stream = ScriptedStream([[SURE_RIGHT]])
    with pytest.raises(UnknownVerifierError, match="no-such-check"):
        run_solve(Q, [1], stream, policy(verifiers=["no-such-check"]))
    assert stream.calls == []


def test_a_correctable_wrong_draft_beats_a_candidate_that_claims_nothing() -> None:
    """With in-place repair, a wrong sum that can be fixed is worth more than a vague step."""
    unsure_sum = Draft("So 4.2 + 3.8 + 3.6 + 4.4 = 15.6 miles.\n", weak={"15.6": 0.3})
    samples = [Draft("So we add them up.\n", p=0.99), Draft("Let us add.\n", p=0.99)]
    result, _ = solve([[unsure_sum], samples, [FINAL_12]], policy(resample={"n_candidates": 2, "max_attempts": 1}))
    assert result.steps[0]["text"] == "So 4.2 + 3.8 + 3.6 + 4.4 = 16.0 miles.\n"  # formatted like the original
    assert result.interventions == {"resample": 1, "correct": 1}


def verify_mode_policy() -> Policy:
    return policy(escalation={"when": "immediately", "mode": "verify"}, confidence={"escalate_threshold": 0.5})


VERY_UNSURE = Draft("So there are 3 x 4 apples in all.\n", weak={"3": 0.01, "x": 0.05, "4": 0.05})


def test_verify_mode_keeps_a_draft_the_escalated_model_agrees_with() -> None:
    from tests.fakes import make_step

    n_tokens = len(make_step(VERY_UNSURE).token_ids)
    stream = ScriptedStream([[VERY_UNSURE], [FINAL_12]], agreements=[n_tokens])
    result = run_solve(Q, [1], stream, verify_mode_policy(), escalation_layers=LAYERS)
    assert ("agreement", {"draft": n_tokens, "agreed": n_tokens, "escalated": True}) in stream.calls
    assert [c for c in stream.calls if c[0] == "propose"][1][1]["escalated"] is False  # nothing regenerated
    assert result.steps[0]["text"] == VERY_UNSURE.text
    assert result.steps[0]["origin"] == "escalation"
    esc = next(n for n in result.trace.nodes if n["kind"] == "escalation")
    assert (esc["data"]["mode"], esc["data"]["kept_tokens"]) == ("verify", n_tokens)


def test_verify_mode_regenerates_only_after_the_first_disagreement() -> None:
    rewritten = Draft("So there are 3 x 4 = 12 apples in all.\n")
    stream = ScriptedStream([[VERY_UNSURE], [rewritten], [FINAL_12]], agreements=[3])
    result = run_solve(Q, [1], stream, verify_mode_policy(), escalation_layers=LAYERS)
    assert ("propose", {"n": 1, "temperature": 0.0, "escalated": True, "prefix": 3}) in stream.calls
    assert result.steps[0]["text"] == rewritten.text
    assert result.interventions == {"escalate": 1}


def test_verify_only_corrects_without_resampling_or_escalating() -> None:
    from policies import load_policy

    result, stream = solve([[UNSURE_WRONG], [UNSURE_VAGUE], [FINAL_12]], load_policy("verify_only"))
    assert result.steps[0]["text"] == "So 3 x 4 = 12 apples.\n"  # corrected in place, low confidence ignored
    assert result.interventions == {"correct": 1}
    assert all(call[1].get("n", 1) == 1 for call in stream.calls if call[0] == "propose")
    assert result.answer == "12"
