"""Policy schema and YAML loading: every shipped file loads, bad input is rejected naming its key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from orchestrator.errors import PolicyError
from policies import Policy, dump_policy, list_policies, load_policy, policy_from_dict, resolve_layers
from policies.schema import PromptConfig

BUILTINS = ["algebra", "arithmetic", "default", "plain", "tutoring", "verify_only", "word_problems"]


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data, encoding="utf-8")
    return path


def test_list_policies_names_every_builtin() -> None:
    assert set(BUILTINS) <= set(list_policies())


@pytest.mark.parametrize("name", BUILTINS)
def test_every_shipped_yaml_loads(name: str) -> None:
    policy = load_policy(name)
    assert policy.name == name
    assert policy.description
    assert "{question}" in policy.prompt.template


def test_default_yaml_equals_schema_defaults() -> None:
    # default.yaml spells out every key; it must not drift from Policy()'s field defaults
    assert load_policy("default") == Policy()


def test_plain_yaml_equals_plain_constructor() -> None:
    assert load_policy("plain") == Policy.plain()


def test_plain_turns_every_intervention_off() -> None:
    p = Policy.plain()
    assert not (p.confidence.enabled or p.resample.enabled or p.escalation.enabled)
    assert not p.adaptive_temperature.enabled
    assert p.verifiers == []
    assert p.sampling.temperature == 0.0


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("arithmetic", lambda p: p.repair.on_wrong == "correct" and "arithmetic" in p.verifiers),
        ("word_problems", lambda p: p.steps.boundary == "newline" and p.resample.n_candidates == 4),
        ("algebra", lambda p: p.escalation.mode == "verify"),
        ("tutoring", lambda p: p.trace.keep_all_verdicts and p.repair.on_wrong == "flag"),
        ("verify_only", lambda p: p.repair.on_wrong == "correct" and not p.resample.enabled),
    ],
)
def test_domain_defaults(name: str, check: object) -> None:
    assert callable(check) and check(load_policy(name))


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ({"resample": {"n_candidates": 0}}, "resample.n_candidates", "greater than or equal to 1"),
        ({"resample": {"n_candidates": 33}}, "resample.n_candidates", "less than or equal to 32"),
        ({"resample": {"n_candiates": 4}}, "resample.n_candiates", "Extra inputs"),  # typo of a key
        ({"bogus": 1}, "bogus", "Extra inputs"),  # unknown top-level key
        ({"steps": {"boundary": "sentence"}}, "steps.boundary", "'newline'"),  # not one of the literals
        ({"confidence": {"signal": "vibes"}}, "confidence.signal", "'entropy'"),
        ({"confidence": {"key_weight": 0.5}}, "confidence.key_weight", "greater than or equal to 1"),
        ({"confidence": {"accept_threshold": 1.5}}, "confidence.accept_threshold", "less than"),
        ({"confidence": {"class_weights": {"digits": 2}}}, "confidence.class_weights.digits", "Extra"),
        (
            {"confidence": {"accept_threshold": 0.2, "escalate_threshold": 0.5}},  # bands out of order
            "confidence",
            "escalate_threshold (0.5) must not exceed accept_threshold (0.2)",
        ),
        ({"escalation": {"layers": "middle"}}, "escalation.layers", "invalid layer spec"),
        ({"escalation": {"layers": "deep:1.5"}}, "escalation.layers", "(0, 1]"),
        ({"escalation": {"layers": [1, -2]}}, "escalation.layers", "non-negative"),
        ({"escalation": {"layers": [3, 3]}}, "escalation.layers", "must not repeat"),
        ({"escalation": {"when": "never"}}, "escalation.when", "'after_resample'"),
        ({"repair": {"on_wrong": "ignore"}}, "repair.on_wrong", "'correct'"),
        ({"final": {"answer_strategies": ["boxed", "guess"]}}, "final.answer_strategies[1]", "'boxed'"),
        ({"final": {"answer_strategies": []}}, "final.answer_strategies", "at least 1"),
        ({"verifiers": ["arith metic"]}, "verifiers", "invalid verifier name"),
        ({"prompt": {"template": "no placeholder"}}, "prompt.template", "{question}"),
        ({"steps": {"max_step_tokens": 500, "max_total_tokens": 100}}, "steps", "must not exceed"),
        ({"sampling": {"temperature": -1}}, "sampling.temperature", "greater than or equal to 0"),
        ({"resample": {"temperature": 0}}, "resample.temperature", "greater than 0"),  # would be greedy
    ],
)
def test_bad_input_is_rejected_naming_the_key(tmp_path: Path, data: dict, key: str, fragment: str) -> None:
    path = write(tmp_path, "x.yaml", data)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"policy {str(path)!r}: ")
    assert f": {key}: " in message
    assert fragment in message


def test_message_format_matches_the_issue(tmp_path: Path) -> None:
    write(tmp_path, "x.yaml", {"resample": {"n_candidates": 0}})
    with pytest.raises(PolicyError) as info:
        load_policy("x.yaml", search_dirs=[tmp_path])
    assert str(info.value) == ("policy 'x.yaml': resample.n_candidates: Input should be greater than or equal to 1")


def test_several_problems_are_all_named(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", {"resample": {"n_candidates": 0}, "trace": {"keep": True}})
    with pytest.raises(PolicyError, match=r"resample\.n_candidates: .*; trace\.keep: "):
        load_policy(path)


def test_load_by_path_and_name_from_search_dir(tmp_path: Path) -> None:
    path = write(tmp_path, "mine.yaml", {"description": "mine", "resample": {"n_candidates": 8}})
    by_path = load_policy(path)
    by_str = load_policy(str(path))
    by_name = load_policy("mine", search_dirs=[tmp_path])
    assert by_path == by_str == by_name
    assert by_path.name == "mine"  # the file stem when the file names none
    assert by_path.resample.n_candidates == 8
    assert by_path.confidence == Policy().confidence  # everything else is the schema default
    assert "mine" in list_policies(search_dirs=[tmp_path])


def test_search_dir_shadows_builtin(tmp_path: Path) -> None:
    write(tmp_path, "arithmetic.yaml", {"description": "my arithmetic"})
    assert load_policy("arithmetic", search_dirs=[tmp_path]).description == "my arithmetic"


def test_extends_deep_merges_onto_base(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", {"extends": "tutoring", "resample": {"n_candidates": 6}})
    path = write(tmp_path, "child.yaml", {"extends": "base.yaml", "resample": {"max_attempts": 5}})
    child = load_policy(path)
    assert child.name == "child"
    assert child.resample.n_candidates == 6  # from base.yaml (a path relative to the child)
    assert child.resample.max_attempts == 5  # the child's own
    assert child.trace.keep_all_verdicts  # from tutoring, two levels up
    assert child.prompt.system == load_policy("tutoring").prompt.system


def test_extends_replaces_lists(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", {"extends": "default", "final": {"answer_strategies": ["boxed"]}})
    assert load_policy(path).final.answer_strategies == ["boxed"]


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"a.yaml": {"extends": "b.yaml"}, "b.yaml": {"extends": "a.yaml"}}, "cycle"),
        ({"a.yaml": {"extends": "nowhere"}}, "unknown policy 'nowhere'"),
        ({"a.yaml": {"extends": 3}}, "extends: expected"),
        ({"a.yaml": {"extends": "b.yaml"}, "b.yaml": {"resample": {"n_candidates": 0}}}, "policy 'b.yaml'"),
    ],
)
def test_bad_extends(tmp_path: Path, files: dict[str, dict], fragment: str) -> None:
    for name, data in files.items():
        write(tmp_path, name, data)
    with pytest.raises(PolicyError, match=fragment):
        load_policy(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("resample: [unclosed", "invalid YAML"),
        ("- a list\n- not a mapping\n", "expected a mapping"),
    ],
)
def test_malformed_yaml(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(PolicyError, match=fragment):
        load_policy(write(tmp_path, "x.yaml", text))


def test_empty_file_is_the_default_policy_under_its_name(tmp_path: Path) -> None:
    assert load_policy(write(tmp_path, "empty.yaml", "")) == Policy(name="empty")


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(PolicyError, match=r"unknown policy 'nope'; known: .*arithmetic"):
        load_policy("nope")


def test_missing_path() -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy("/nonexistent/x.yaml")


def test_policy_passes_through() -> None:
    p = Policy.plain()
    assert load_policy(p) is p


@pytest.mark.parametrize("name", BUILTINS)
def test_round_trip_dump_load(tmp_path: Path, name: str) -> None:
    policy = load_policy(name)
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_policy(policy), encoding="utf-8")
    assert load_policy(path) == policy
    assert Policy.model_validate(policy.model_dump()) == policy


def test_inline_policies() -> None:
    assert Policy.model_validate({"resample": {"n_candidates": 2}}).resample.n_candidates == 2
    with pytest.raises(ValidationError):
        Policy.model_validate({"resample": {"n_candidates": 0}})
    p = policy_from_dict({"extends": "tutoring", "name": "t2"}, source="request")
    assert p.name == "t2" and p.trace.keep_all_verdicts
    with pytest.raises(PolicyError, match=r"^policy 'request': confidence\.signal: "):
        policy_from_dict({"confidence": {"signal": "x"}}, source="request")


def test_assignment_is_validated() -> None:
    p = Policy()
    with pytest.raises(ValidationError):
        p.resample.n_candidates = 0


def test_layer_list_accepted() -> None:
    assert Policy.model_validate({"escalation": {"layers": [4, 2]}}).escalation.layers == [4, 2]
    assert Policy.model_validate({"escalation": {"layers": "profile:/tmp/p.json"}}).escalation.layers


@pytest.mark.parametrize(
    ("spec", "n", "expected"),
    [
        ("all", 4, [0, 1, 2, 3]),
        ("middle:0.25", 24, [9, 10, 11, 12, 13, 14]),  # 6 layers centred on the middle
        ("deep:0.25", 8, [6, 7]),  # the last quarter
        ("middle:0.01", 24, [11]),  # at least one layer
        ("deep:1", 3, [0, 1, 2]),
        ([5, 1], 8, [1, 5]),  # an explicit list, sorted
    ],
)
def test_resolve_layers(spec: list[int] | str, n: int, expected: list[int]) -> None:
    assert resolve_layers(spec, n) == expected


@pytest.mark.parametrize(("spec", "n"), [([8], 8), ("profile:x.json", 8), ("middle:0.5", 0)])
def test_resolve_layers_rejects(spec: list[int] | str, n: int) -> None:
    with pytest.raises(ValueError):
        resolve_layers(spec, n)


def test_prompt_render_keeps_latex_braces() -> None:
    text = PromptConfig().render("What is 2+3?")
    assert text.startswith("What is 2+3?") and "\\boxed{}" in text
    assert PromptConfig(one_step_per_line=True).render("q").endswith("Write each step on a single line.")


def test_profile_beside_policy_file_picks_its_top_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from orchestrator.api import Orchestrator

    folder = tmp_path / "pol"
    folder.mkdir()
    scores = [0.9, 0.2, 0.5, 0.1, 0.8, 0.3, 0.7, 0.6]  # restore_kl: lower means restoring the layer helps more
    layers = [{"index": i, "restore_kl": s} for i, s in enumerate(scores)]
    (folder / "prof.json").write_text(json.dumps({"layers": layers}), encoding="utf-8")
    (folder / "p.yaml").write_text(
        "extends: arithmetic\nescalation: {layers: 'profile:prof.json', profile_layers: 3}\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)  # the profile is found beside the policy, not in the working directory
    policy = load_policy(folder / "p.yaml")
    assert policy.escalation.layers == f"profile:{(folder / 'prof.json').resolve()}"
    assert policy.confidence.accept_threshold == load_policy("arithmetic").confidence.accept_threshold
    orch = Orchestrator(SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(num_hidden_layers=8))))
    assert orch.escalation_layers(policy) == [1, 3, 5]
    assert orch.escalation_layers(policy.model_copy(update={"escalation": policy.escalation.model_copy(
        update={"profile_layers": 5})})) == [1, 2, 3, 5, 7]  # fmt: skip


@pytest.mark.parametrize("n", [1, 3, 7, 24, 26, 28])
@pytest.mark.parametrize("spec", ["all", "middle:0.1", "middle:0.25", "middle:0.5", "deep:0.125", "deep:0.3", "deep:1"])
def test_layer_choice_and_policy_resolution_name_the_same_layers(spec: str, n: int) -> None:
    from orchestrator.layer_choice import choose_layers

    assert choose_layers(n, spec) == resolve_layers(spec, n)


def test_a_policy_file_naming_a_missing_profile_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("escalation: {layers: 'profile:gone.json'}\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"names the profile 'gone\.json', which is not there"):
        load_policy(tmp_path / "p.yaml")
