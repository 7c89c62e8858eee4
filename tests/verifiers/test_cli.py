"""``qslm check``: table or JSON, exit 0 / 1 / 2, stdin with "-", never a traceback."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from verifiers.cli import add_check_arguments, main, run_check


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qslm check")
    add_check_arguments(parser)
    return parser.parse_args(argv)


def test_correct_step_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(parse(["She walked 12 x 4 = 48 miles."])) == 0
    out = capsys.readouterr().out
    assert "correct" in out and "12 x 4 = 48" in out


def test_wrong_step_exits_1_with_correction(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(parse(["3 bags × $4 = $13"])) == 1
    out = capsys.readouterr().out
    assert "wrong" in out and "corrected: 3 bags × $4 = $12" in out


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(parse([r"\( 16 - 3 - 4 = 8 \)", "--json"])) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "wrong"
    assert data["claims"][0]["expected"] == "9"
    assert data["corrected_text"] == r"\( 16 - 3 - 4 = 9 \)"


def test_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("2 + 2 = 4\n"))
    assert run_check(parse(["-", "--json"])) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "correct"


def test_no_claim_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(parse(["It was sunny."])) == 0
    assert "unknown" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "   "])
def test_bad_input_exits_2_with_one_line(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_check(parse([text])) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_unexpected_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def boom(text: str) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("verifiers.cli.check_step", boom)
    assert run_check(parse(["1 + 1 = 2"])) == 2
    err = capsys.readouterr().err
    assert err == "qslm check: error: RuntimeError: disk on fire\n"


def test_main_standalone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["2 + 2 = 5"]) == 1
    assert "corrected: 2 + 2 = 4" in capsys.readouterr().out
