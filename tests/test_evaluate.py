"""``qslm eval``: data loading, config strings, the statistics, resume, and the files a run writes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InputError
from orchestrator.eval_data import EvalConfig, load_questions, parse_config
from orchestrator.eval_methods import majority
from orchestrator.eval_report import markdown_table, write_reports
from orchestrator.eval_stats import answers_agree, restoration, sign_test, summarize, wilson
from orchestrator.eval_strict import strict_marks
from orchestrator.evaluate import ResultStore, add_eval_arguments, build_summary, run_eval, run_eval_command
from tests.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(save_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama", layers=2))


def _write(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _gsm8k(path: Path, n: int) -> Path:
    return _write(
        path, [{"question": f"What is {i} + 2?", "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"} for i in range(n)]
    )


# ------------------------------------------------------------------------------------------------ data


def test_loads_gsm8k_and_math_formats(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mixed.jsonl",
        [
            {"question": "Two and two?", "answer": "2 + 2 = 4\n#### 4"},
            {"question": "Big?", "answer": "#### 1,200"},
            "",  # blank lines are skipped
            {"problem": "Half?", "solution": "It is $\\boxed{\\frac{1}{2}}$."},
            {"problem": "Given?", "solution": "whatever", "answer": "7"},  # MATH-500 keeps the answer apart
            {"id": "mine-1", "question": "Named?", "answer": "#### 3"},
        ],
    )
    qs = load_questions(path)
    assert [q.gold for q in qs] == ["4", "1,200", "\\frac{1}{2}", "7", "3"]
    assert [q.line for q in qs] == [1, 2, 4, 5, 6]
    assert [q.index for q in qs] == [0, 1, 2, 3, 4]
    assert qs[4].id == "mine-1" and qs[0].id.startswith("q")
    assert [q.id for q in load_questions(path, limit=2)] == [q.id for q in qs[:2]]  # ids do not depend on --limit


def test_repeated_question_gets_a_distinct_id(tmp_path: Path) -> None:
    qs = load_questions(_write(tmp_path / "d.jsonl", [{"question": "Same?", "answer": "#### 1"}] * 2))
    assert qs[0].id != qs[1].id


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"answer": "#### 3"}', "needs a non-empty 'question'"),
        ('{"question": "q?", "answer": "no hashes here"}', "ending in '#### N'"),  # GSM8K without its answer line
        ('{"problem": "p?", "solution": "no box"}', "\\boxed"),  # MATH without a boxed answer
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [{"question": "fine?", "answer": "#### 1"}, line])
    with pytest.raises(InputError, match=r"bad\.jsonl:2: ") as err:
        load_questions(path)
    assert message in str(err.value)


def test_a_byte_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"question": "fine?", "answer": "#### 1"}\n{"question": "caf\xe9?", "answer": "#### 2"}\n')
    with pytest.raises(InputError, match=r"latin1\.jsonl:2: not UTF-8"):
        load_questions(path)
    assert [q.gold for q in load_questions(path, limit=1)] == ["1"]  # the lines before it still load


def test_any_line_ending_and_a_byte_order_mark_load(tmp_path: Path) -> None:
    lines = [json.dumps({"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"}) for i in range(3)]
    for ending in ("\r", "\r\n"):
        path = tmp_path / "endings.jsonl"
        path.write_bytes(("\ufeff" + ending.join(lines) + ending).encode("utf-8"))
        assert [(q.gold, q.line) for q in load_questions(path)] == [("1", 1), ("2", 2), ("3", 3)]


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_questions(tmp_path / "nope.jsonl")


# --------------------------------------------------------------------------------------------- configs


def test_parses_configs() -> None:
    plain = parse_config("qwen2.5-coder-0.5b:none:plain")
    assert (plain.model, plain.quant, plain.method, plain.k, plain.policy_name) == (
        "qwen2.5-coder-0.5b", "none", "plain", 1, "plain"
    )  # fmt: skip
    orch = parse_config(" m:SIM-NF4:orchestrated:arithmetic ")
    assert (orch.quant, orch.method, orch.policy, orch.id) == (
        "sim-nf4", "orchestrated", "arithmetic", "m:sim-nf4:orchestrated:arithmetic"
    )  # fmt: skip
    assert parse_config("m:sim-nf4:orchestrated").policy == "default"
    sc = parse_config("m:rtn-int3:sc4")
    assert (sc.method, sc.k, sc.id, sc.load_key) == ("sc", 4, "m:rtn-int3:sc4", ("m", "rtn-int3"))
    assert parse_config("m:none:plain:plain").id == "m:none:plain"  # the default prompt policy is not spelled out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("qwen2.5-coder-0.5b:none", "expected MODEL:QUANT:METHOD"),  # no method
        ("m::plain", "expected MODEL:QUANT:METHOD"),  # empty quant
        ("m:int5:plain", "unknown quantization 'int5'"),
        ("m:none:beam", "unknown method 'beam'"),
        ("m:none:sc1", "2 to 64 chains"),  # one chain is not a vote
        ("m:none:sc65", "2 to 64 chains"),
    ],
)
def test_bad_config_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=f"config '{text}'") as err:
        parse_config(text)
    assert message in str(err.value)


# ------------------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),  # textbook example (Wilson 1927; Newcombe 1998, table I)
        (0, 10, 0.0, 0.2775),  # zero successes: the interval is not degenerate
        (10, 10, 0.7225, 1.0),
        (50, 100, 0.4038, 0.5962),
        (1, 29, 0.0061, 0.1718),  # Newcombe 1998: 1/29
        (0, 0, 0.0, 1.0),  # no observation: no information
    ],
)
def test_wilson_interval(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_answers_agree_and_majority() -> None:
    assert answers_agree("1,200", "1200.00") and answers_agree(None, None)
    assert not answers_agree("3", None) and not answers_agree("3", "4")
    assert majority(["7", "8", "7.0", None]) == ("7", 2)
    assert majority(["8", "7", None, None]) == ("8", 1)  # a tie goes to the earliest chain
    assert majority([None, None]) == (None, 0)


def test_restoration_and_sign_test() -> None:
    assert restoration(0.6, 0.2, 1.0) == pytest.approx(0.5)
    assert restoration(0.1, 0.2, 1.0) == pytest.approx(-0.125)  # the method made things worse
    assert restoration(0.5, 0.4, 0.4) is None  # no gap to close
    assert restoration(0.4, 0.6, 0.5) is None  # quantized above the reference: a ratio would say +1.0
    assert sign_test(8, 1) == pytest.approx(0.0390625) and sign_test(3, 3) == 1.0


def _r(config: str, qid: str, answer: str | None, correct: bool, tokens: int = 100, seconds: float = 1.0) -> dict:
    return {"config": config, "question_id": qid, "index": int(qid[1:]), "answer": answer, "correct": correct,
            "tokens": tokens, "seconds": seconds}  # fmt: skip


def test_summary_on_a_hand_made_table() -> None:
    ref, quant, orch = (parse_config(c) for c in ("m:none:plain", "m:sim-nf4:plain", "m:sim-nf4:orchestrated"))
    # gold answers: q0..q4 = 1 2 3 4 5
    rows = [
        # reference: 4 of 5 right; q4 wrong with answer "9"
        *[_r("m:none:plain", f"q{i}", str(i + 1), True) for i in range(4)],
        _r("m:none:plain", "q4", "9", False),
        # quantized: right on q0, q1; wrong on q2 ("0"), q3 (no answer), q4 ("9", agreeing with the reference)
        _r("m:sim-nf4:plain", "q0", "1", True, seconds=2.0),
        _r("m:sim-nf4:plain", "q1", "2", True, seconds=2.0),
        _r("m:sim-nf4:plain", "q2", "0", False, seconds=2.0),
        _r("m:sim-nf4:plain", "q3", None, False, seconds=2.0),
        _r("m:sim-nf4:plain", "q4", "9", False, seconds=2.0),
        # orchestrated, 4 questions so far: repairs q2, loses q1, q3 still unanswered
        _r("m:sim-nf4:orchestrated:default", "q0", "1", True, tokens=150, seconds=3.0),
        _r("m:sim-nf4:orchestrated:default", "q1", "7", False, tokens=150, seconds=3.0),
        _r("m:sim-nf4:orchestrated:default", "q2", "3", True, tokens=150, seconds=3.0),
        _r("m:sim-nf4:orchestrated:default", "q3", None, False, tokens=150, seconds=3.0),
        {**_r("m:sim-nf4:orchestrated:default", "q3", None, False), "config": "other:none:plain"},  # not planned
    ]
    rows[-2]["interventions"] = {"resample": 2, "escalate": 1}
    rows[-3]["interventions"] = {"resample": 1}
    rows[8].update(finished=False)  # the quantized model's q3 ran out of budget; its others ended
    for row in rows[5:8] + rows[9:10]:
        row.update(finished=True)
    rows[13].update(tokens_kept=320, max_tokens=320)  # an orchestrated answer that kept its whole budget
    rows[12].update(tokens_kept=200, max_tokens=320)
    s = {e["config"]: e for e in summarize(rows, [ref, quant, orch], expected=5)}
    r, q, o = s["m:none:plain"], s["m:sim-nf4:plain"], s["m:sim-nf4:orchestrated:default"]
    assert (r["accuracy"]["k"], r["accuracy"]["n"], r["fidelity"], r["restoration"]) == (4, 5, None, None)
    assert (q["fidelity"]["k"], q["fidelity"]["n"]) == (3, 5)  # q0, q1, q4 agree; q2 differs; q3 missing vs answered
    assert q["restoration"] is None and q["cost"] is None  # plain greedy is its own baseline
    # quantizing lost q2 and q3 (right at full precision), gained nothing: 4/5 -> 2/5
    assert q["quantization_cost"] == {
        "n": 5, "reference": 0.8, "quantized": 0.4, "gained": 0, "lost": 2, "sign_test_p": 0.5
    }  # fmt: skip
    assert r["quantization_cost"] is None and o["quantization_cost"] is None
    assert (o["n"], o["complete"], r["complete"]) == (4, False, True)
    assert (o["fidelity"]["k"], o["fidelity"]["n"]) == (2, 4)  # q0, q2 agree
    rest = o["restoration"]
    assert rest["n"] == 4  # paired on the questions all three answered
    # accuracy on q0..q3: reference 4/4, quantized 2/4, orchestrated 2/4 -> (0.5 - 0.5) / (1 - 0.5) = 0
    assert rest["accuracy"]["value"] == pytest.approx(0.0)
    # fidelity on q0..q3: quantized 2/4 (q0, q1), orchestrated 2/4 (q0, q2) -> 0
    assert rest["fidelity"]["value"] == pytest.approx(0.0)
    assert (rest["gained"], rest["lost"]) == (1, 1)
    # q2 was repaired where a re-sample fired; q1 was lost with nothing fired (batch numerics alone)
    assert (rest["gained_with"], rest["lost_with"]) == ({"resample": 1}, {"none": 1})
    # quantizing lost q2 and q3 (p = 0.5 for that gap); the orchestrator won back q2
    assert (rest["lost_to_quantization"], rest["recovered"], rest["gap_sign_test_p"]) == (2, 1, 0.5)
    assert o["cost"] == {
        "n": 4,
        "tokens_ratio": pytest.approx(1.5),
        "seconds_ratio": pytest.approx(1.5),
        "seconds_n": 4,
        "cpu_ratio": None,  # rows written without CPU time: no CPU ratio rather than a made-up one
        "cpu_n": 0,
    }
    assert o["interventions"] == {"escalate": 1, "resample": 3}
    assert (r["cut"], q["cut"], o["cut"]) == (0, 1, 1)
    assert "| 1/4 |" in markdown_table({"configs": [o]})
    assert o["accuracy"]["ci95"] == list(wilson(2, 4))


def test_strict_scoring_counts_only_answers_the_model_stated() -> None:
    plain, sc = parse_config("m:sim-nf4:plain"), parse_config("m:sim-nf4:sc4")
    rows = {  # as scored by the evaluation: flexibly, the last number standing in for a missing statement
        "boxed": {"text": "So 3 x 4 = 12.\nThe answer is \\boxed{12}.", "answer": "12", "correct": True},
        "cut": {"text": "1. First, 3 x 4 = 12 apples\n2. Then 12", "answer": "12", "correct": True},
        "hashes": {"text": "3 x 4 = 13\n#### 13", "answer": "13", "correct": False},
        "stated wrong": {"text": "The answer is 11.", "answer": "11", "correct": False},
    }
    marks = strict_marks(rows, plain)
    assert marks == {
        "boxed": (True, True), "cut": (False, False), "hashes": (False, True), "stated wrong": (False, True)
    }  # fmt: skip
    assert strict_marks(rows, sc) is None  # rows written before they kept each chain's stated vote
    votes = {  # self-consistency votes again with the chains that state their answer
        "q0": {"votes_stated": ["12", None, "12", "7"], "gold": "12"},
        "q1": {"votes_stated": [None, None, None, None], "gold": "12"},  # every chain read by its last number
        "q2": {"votes_stated": ["7", "7", None, "12"], "gold": "12"},
    }
    assert strict_marks(votes, sc) == {"q0": (True, True), "q1": (False, False), "q2": (False, True)}
    assert strict_marks({"q0": {"answer": "12", "correct": True}}, plain) is None  # no text to read
    # summarize carries the strict count beside the flexible one, and the table shows it
    flexible = [{**_r(plain.id, f"q{i}", row["answer"], row["correct"]), **row} for i, row in enumerate(rows.values())]
    (entry,) = summarize(flexible, [plain])
    assert (entry["accuracy"]["k"], entry["strict"]["k"], entry["strict"]["stated"]) == (2, 1, 3)
    assert "| 1/4 |" in markdown_table({"configs": [entry]})


def test_restoration_undefined_when_reference_equals_quantized() -> None:
    configs = [parse_config(c) for c in ("m:none:plain", "m:sim-nf4:plain", "m:sim-nf4:sc4")]
    rows = [_r(c.id, "q0", "1", True) for c in configs]
    (entry,) = [e for e in summarize(rows, configs) if e["method"] == "sc4"]
    assert entry["restoration"]["accuracy"]["value"] is None
    assert "undefined" in entry["restoration"]["accuracy"]["note"]
    assert "gained_with" not in entry["restoration"]  # self-consistency has no interventions to credit
    summary = build_summary(rows, configs, data="d.jsonl", n_questions=1, settings={})
    assert "undefined: ref ≤ quant (n=1)" in markdown_table(summary)


# ----------------------------------------------------------------------------------------- running


def test_resume_computes_only_new_questions(tmp_path: Path, tiny: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.plain

    calls: list[int] = []  # prompts per generate_plain call
    real = orchestrator.plain.generate_plain

    def counting(gen: Any, prompts: Any, **kwargs: Any) -> Any:
        calls.append(len(prompts))
        return real(gen, prompts, **kwargs)

    monkeypatch.setattr(orchestrator.plain, "generate_plain", counting)
    data = _gsm8k(tmp_path / "q.jsonl", 3)
    kw: dict[str, Any] = {"max_tokens": 3, "batch": 8, "progress": False, "device": "cpu", "reports": False}
    run_eval(data, [f"{tiny}:none:plain"], tmp_path / "out", limit=2, **kw)
    assert calls == [2]  # both questions in one batch
    summary = run_eval(data, [f"{tiny}:none:plain"], tmp_path / "out", limit=3, **kw)
    assert calls == [2, 1]  # only the third question is computed
    assert summary["configs"][0]["n"] == 3 and summary["configs"][0]["complete"]
    run_eval(data, [f"{tiny}:none:plain"], tmp_path / "out", limit=3, **kw)
    assert calls == [2, 1]  # finished: nothing recomputed
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 3


def test_cut_last_line_is_recomputed(tmp_path: Path, tiny: str) -> None:
    data = _gsm8k(tmp_path / "q.jsonl", 2)
    out = tmp_path / "out"
    kw: dict[str, Any] = {"max_tokens": 3, "progress": False, "reports": False, "device": "cpu"}
    run_eval(data, [f"{tiny}:none:plain"], out, **kw)
    results = out / "results.jsonl"
    text = results.read_text()
    results.write_text(text[: len(text) - 20])  # killed in the middle of writing the second line
    summary = run_eval(data, [f"{tiny}:none:plain"], out, **kw)
    assert summary["configs"][0]["n"] == 2
    # the recomputed row went on a line of its own: a fresh read of the file finds both rows, and the cut line
    reread = ResultStore(results)
    assert len(reread.rows) == 2 and len(results.read_text().splitlines()) == 3
    # a kill that cuts a multi-byte character in two: the store still opens, the cut row is left out
    results.write_bytes(results.read_bytes() + '{"config": "×'.encode()[:-1])
    assert len(ResultStore(results).rows) == 2


def test_resuming_with_other_settings_is_refused(tmp_path: Path, tiny: str) -> None:
    data = _gsm8k(tmp_path / "q.jsonl", 2)
    out = tmp_path / "out"
    kw: dict[str, Any] = {"progress": False, "reports": False, "device": "cpu"}
    run_eval(data, [f"{tiny}:none:plain"], out, max_tokens=3, limit=1, **kw)
    before = (out / "results.jsonl").read_text()

    def no_model(*_: Any) -> Any:
        raise AssertionError("a refused run must not load a model")

    for settings in ({"max_tokens": 4}, {"max_tokens": 3, "seed": 1}):
        with pytest.raises(InputError, match="other settings") as err:
            run_eval(data, [f"{tiny}:none:plain"], out, limit=2, loader=no_model, **kw, **settings)
        assert "this run:" in str(err.value) and "1 row of" in str(err.value)
    assert (out / "results.jsonl").read_text() == before  # nothing lost, nothing added
    # another configuration in the same folder has no rows to clash with
    run_eval(data, [f"{tiny}:sim-nf4:plain"], out, max_tokens=4, limit=1, **kw)


def test_no_questions_is_refused_before_a_model_loads(tmp_path: Path) -> None:
    def no_model(*_: Any) -> Any:
        raise AssertionError("nothing to run: no model to load")

    empty = _write(tmp_path / "empty.jsonl", ["", "  "])
    with pytest.raises(InputError, match="empty"):
        run_eval(empty, ["m:none:plain"], tmp_path / "out", loader=no_model, progress=False)
    with pytest.raises(InputError, match="--limit 0"):
        run_eval(_gsm8k(tmp_path / "q.jsonl", 2), ["m:none:plain"], tmp_path / "out", limit=0, loader=no_model)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "a JSON array, not an object"),
        ("null", "a JSON null"),
        ('{"question_id": "q", "index": 0, "tokens": 1, "seconds": 1}', "no 'config'"),
        ('{"config": "c", "question_id": "q", "index": true, "tokens": 1, "seconds": 1}', "'index' is not a whole"),
        ('{"config": "c", "question_id": "q", "index": -1, "tokens": 1, "seconds": 1}', "'index' is negative"),
        ('{"config": "c", "question_id": "q", "index": 0, "tokens": 1, "seconds": "1"}', "'seconds' is not a number"),
    ],
)
def test_a_whole_line_that_is_no_result_row_is_named_not_guessed(tmp_path: Path, line: str, problem: str) -> None:
    results = tmp_path / "results.jsonl"
    good = {"config": "c", "question_id": "q0", "index": 0, "tokens": 3, "seconds": 0.5, "answer": "2"}
    results.write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"results\.jsonl:2 is not a result row") as err:
        ResultStore(results)
    assert problem in str(err.value)
    results.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert list(ResultStore(results).rows) == [("c", "q0")]


def test_rows_of_another_question_file_are_not_mixed_in(tmp_path: Path, tiny: str) -> None:
    out = tmp_path / "out"
    kw: dict[str, Any] = {"max_tokens": 2, "progress": False, "reports": False, "device": "cpu"}
    run_eval(_gsm8k(tmp_path / "a.jsonl", 2), [f"{tiny}:none:plain"], out, **kw)
    before = (out / "results.jsonl").read_text()

    def no_model(*_: Any) -> Any:
        raise AssertionError("a refused run must not load a model")

    other = _write(tmp_path / "b.jsonl", [{"question": "What is 9 + 9?", "answer": "#### 18"}])
    with pytest.raises(InputError, match="other questions") as err:
        run_eval(other, [f"{tiny}:sim-nf4:plain"], out, loader=no_model, **kw)
    assert "question 1 there is" in str(err.value) and "another question file" in str(err.value)
    # the same questions with a mended gold answer: the stored verdicts were taken against the old one
    mended = _write(tmp_path / "c.jsonl", [{"question": "What is 0 + 2?", "answer": "#### 3"}])
    with pytest.raises(InputError, match=r"question 1 was scored against the answer '2' \(this file: '3'\)"):
        run_eval(mended, [f"{tiny}:none:plain"], out, loader=no_model, **kw)
    assert (out / "results.jsonl").read_text() == before
    # the same questions in another order: rows keep their positions, so they would mean other questions
    swapped = _write(
        tmp_path / "d.jsonl", [json.loads(line) for line in reversed((tmp_path / "a.jsonl").read_text().splitlines())]
    )
    with pytest.raises(InputError, match="the file's order changed") as err:
        run_eval(swapped, [f"{tiny}:none:plain"], out, loader=no_model, **kw)
    assert "was number 1 there, 2 here" in str(err.value) and "(1 row)" in str(err.value)
    # the first file, or its first question alone, still resumes there
    assert run_eval(_gsm8k(tmp_path / "a.jsonl", 2), [f"{tiny}:none:plain"], out, limit=1, loader=no_model, **kw)


def test_rows_of_an_edited_policy_are_not_mixed_in(tmp_path: Path, tiny: str) -> None:
    policy = tmp_path / "mine.yaml"
    policy.write_text("extends: plain\ndescription: first version\n", encoding="utf-8")
    data = _gsm8k(tmp_path / "q.jsonl", 2)
    out = tmp_path / "out"
    kw: dict[str, Any] = {"max_tokens": 2, "progress": False, "reports": False, "device": "cpu"}
    config = f"{tiny}:none:plain:{policy}"
    run_eval(data, [config], out, limit=1, **kw)
    # a new description is not a new policy: the run resumes
    policy.write_text("extends: plain\ndescription: reworded\n", encoding="utf-8")
    run_eval(data, [config], out, limit=2, **kw)
    digests = {json.loads(line)["policy_digest"] for line in (out / "results.jsonl").read_text().splitlines()}
    assert len(digests) == 1
    # another answer strategy is: its rows would disagree with the stored ones
    policy.write_text("extends: plain\nfinal: {answer_strategies: [last_number]}\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"2 rows of .* were made under another version of its policy"):
        run_eval(data, [config], out, limit=2, **kw)


def test_policy_digest_follows_a_profiles_contents_not_its_place(tmp_path: Path) -> None:
    from orchestrator.evaluate import policy_digest

    digests = []
    for place in ("one", "two"):
        folder = tmp_path / place
        folder.mkdir()
        (folder / "p.json").write_text('{"layers": [1]}', encoding="utf-8")
        (folder / "mine.yaml").write_text(
            'extends: arithmetic\nescalation: {layers: "profile:p.json"}\n', encoding="utf-8"
        )
        digests.append(policy_digest(parse_config(f"m:sim-nf4:orchestrated:{folder / 'mine.yaml'}")))
    assert digests[0] == digests[1]  # the same policy and profile in two checkouts
    (tmp_path / "two" / "p.json").write_text('{"layers": [2]}', encoding="utf-8")
    assert policy_digest(parse_config(f"m:sim-nf4:orchestrated:{tmp_path / 'two' / 'mine.yaml'}")) != digests[0]


def test_partial_runs_are_summarized_on_the_leading_questions() -> None:
    """Concurrent solves finish out of order; a partial run's figures must not favour the quick questions."""
    ref, quant = parse_config("m:none:plain"), parse_config("m:sim-nf4:plain")
    rows = [_r(ref.id, f"q{i}", "1", True) for i in range(5)]
    rows += [_r(quant.id, f"q{i}", "1", i != 3) for i in (0, 1, 3, 4)]  # q2 still running; q3 wrong
    entry = summarize(rows, [ref, quant], expected=5)[1]
    assert (entry["n"], entry["done"], entry["accuracy"]["k"]) == (2, 4, 2)  # q0, q1 only
    assert (entry["fidelity"]["n"], entry["quantization_cost"]["n"]) == (2, 2)
    assert "partial (4/5; figures on the first 2)" in markdown_table({"configs": [entry]})


def test_every_method_writes_rows_and_reports(tmp_path: Path, tiny: str) -> None:
    data = _gsm8k(tmp_path / "q.jsonl", 2)
    out = tmp_path / "out"
    configs = [
        f"{tiny}:none:plain",
        f"{tiny}:sim-nf4:plain",
        f"{tiny}:sim-nf4:sc2",
        f"{tiny}:sim-nf4:orchestrated:plain",
    ]
    loads: list[tuple[str, str]] = []

    def loader(model: str, quant: str, device: str) -> Any:
        from orchestrator.loading import load

        loads.append((model, quant))
        return load(model, quant=quant, device=device, progress=False)

    summary = run_eval(data, configs, out, max_tokens=4, batch=1, solves=2, device="cpu", progress=False, loader=loader)
    assert loads == [(tiny, "none"), (tiny, "sim-nf4")]  # each model x quant loaded once, its configs run together
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["config"] for r in rows} == {parse_config(c).id for c in configs}
    sc = [r for r in rows if r["config"].endswith(":sc2")]
    assert all(len(r["votes"]) == 2 and r["tokens"] <= 8 for r in sc)
    assert all(len(r["chains_finished"]) == 2 and r["finished"] == all(r["chains_finished"]) for r in sc)
    # a 4-token chain states no answer: every vote stands on a last number, so strict scoring has none
    assert all(r["votes_stated"] == [None, None] for r in sc)
    assert summary["configs"][2]["strict"]["stated"] == 0
    orch = [r for r in rows if ":orchestrated:" in r["config"]]
    assert all(isinstance(r["interventions"], dict) and r["batch"] == 2 for r in orch)  # both solves at once
    assert all(r["batch"] == 1 for r in rows if r["config"].endswith(":plain") and ":orchestrated" not in r["config"])
    assert summary["settings"]["solves"] == 2 and summary["settings"]["machine"].startswith("cpu: ")
    keys = {"gold", "answer", "correct", "tokens", "seconds", "cpu_seconds", "seed", "max_tokens", "policy_digest"}
    assert all(keys <= r.keys() and r["machine"] == summary["settings"]["machine"] for r in rows)
    assert summary["configs"][1]["cost"] is None and summary["configs"][2]["cost"]["cpu_n"] == 2
    for name in ("summary.json", "results.md", "accuracy_vs_cost.png", "fidelity.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "accuracy_vs_cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "summary.json").read_text())
    assert saved["n_questions"] == 2 and [e["config"] for e in saved["configs"]] == [
        e["config"] for e in summary["configs"]
    ]
    table = (out / "results.md").read_text()
    assert "Wilson 95%" in table and "(reference)" in table and table.count("| done |") == 4


def test_write_reports_without_plots(tmp_path: Path) -> None:
    configs = [EvalConfig("m", "none", "plain")]
    summary = build_summary([_r("m:none:plain", "q0", "1", True)], configs, data="d", n_questions=2, settings={})
    paths = write_reports(summary, tmp_path, plots=False)
    assert [p.name for p in paths] == ["summary.json", "results.md"]
    assert "partial (1/2)" in paths[1].read_text()


def test_cli_functions(tmp_path: Path, tiny: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    data = _gsm8k(tmp_path / "q.jsonl", 1)
    args = parser.parse_args([str(data), "--config", f"{tiny}:none:plain", "--out", str(tmp_path / "o"),
                              "--max-tokens", "3", "--device", "cpu", "--no-progress", "--limit", "1"])  # fmt: skip
    assert run_eval_command(args) == 0
    assert "| configuration |" in capsys.readouterr().out
    with pytest.raises(InputError, match="no configuration"):
        run_eval(data, [], tmp_path / "none")
    # no --config: the standard comparison of --model under --quant
    args = parser.parse_args([str(data), "--model", tiny, "--quant", "rtn-int4", "--out", str(tmp_path / "std"),
                              "--max-tokens", "3", "--device", "cpu", "--no-progress"])  # fmt: skip
    assert run_eval_command(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "std" / "results.jsonl").read_text().splitlines()]
    suffixes = sorted(r["config"].removeprefix(f"{tiny}:") for r in rows)
    assert suffixes == ["none:plain", "rtn-int4:orchestrated:arithmetic", "rtn-int4:plain", "rtn-int4:sc4"]
    with pytest.raises(InputError, match="--quant none"):
        run_eval_command(parser.parse_args([str(data), "--quant", "none"]))
    with pytest.raises(InputError, match="--solves"):
        run_eval_command(parser.parse_args([str(data), "--config", f"{tiny}:none:plain", "--solves", "0"]))


def test_cost_text_names_the_cpu_n_only_where_it_differs() -> None:
    from orchestrator.eval_report import cost_text

    cost = {"n": 20, "tokens_ratio": 2.3, "seconds_ratio": 2.25, "cpu_ratio": 2.24, "cpu_n": 20}
    entry = {"config": "c", "n": 20, "cost": cost}
    assert cost_text(entry) == "2.30× tok, 2.25× time, 2.24× CPU (n=20)"
    assert cost_text({**entry, "cost": {**cost, "cpu_n": 14}}) == "2.30× tok, 2.25× time (n=20); 2.24× CPU (n=14)"
    fewer = {**cost, "seconds_n": 14, "cpu_n": 14}
    assert cost_text({**entry, "cost": fewer}) == "2.30× tok (n=20); 2.25× time, 2.24× CPU (n=14)"


def test_times_are_paired_only_within_one_machine() -> None:
    """Rows made on another machine (a later session's CPU, 2x faster) count for tokens but not for time."""
    plain, orch = parse_config("m:sim-nf4:plain"), parse_config("m:sim-nf4:orchestrated:arithmetic")
    slow, fast = "cpu: Slow (2 threads)", "cpu: Fast (2 threads)"
    rows = []
    for i in range(4):
        rows.append({"config": plain.id, "question_id": f"q{i}", "index": i, "correct": False, "answer": "1",
                     "tokens": 100, "seconds": 10.0, "cpu_seconds": 20.0, "machine": slow})  # fmt: skip
        rows.append({"config": orch.id, "question_id": f"q{i}", "index": i, "correct": False, "answer": "1",
                     "tokens": 200, "seconds": 30.0 if i < 2 else 15.0, "cpu_seconds": 60.0 if i < 2 else 30.0,
                     "machine": slow if i < 2 else fast})  # fmt: skip
    cost = summarize(rows, [plain, orch])[1]["cost"]
    assert cost["n"] == 4 and cost["tokens_ratio"] == 2.0
    assert cost["seconds_n"] == cost["cpu_n"] == 2 and cost["seconds_ratio"] == 3.0 and cost["cpu_ratio"] == 3.0
    for r in rows:  # rows that name no machine (older ones) pair with any
        r.pop("machine")
    assert summarize(rows, [plain, orch])[1]["cost"]["seconds_n"] == 4


def test_measure_quantization_example(tmp_path: Path, tiny: str, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "measure", Path(__file__).parents[1] / "examples" / "measure_quantization.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "m"
    argv = [
        "--model",
        tiny,
        "--quant",
        "rtn-int4",
        "--n",
        "2",
        "--max-tokens",
        "3",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert example.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("accuracy ") == 4 and printed.count("against plain greedy") == 2  # orchestrated and sc4
    assert len((out / "results.jsonl").read_text().splitlines()) == 8  # 2 problems x 4 configurations
