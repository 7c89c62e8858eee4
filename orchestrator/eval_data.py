"""What an evaluation reads: question files (GSM8K and MATH style) and configuration strings.

A question file is JSON lines, one question a line, in either format:

- GSM8K: ``question`` and ``answer``, the answer ending in ``#### N``;
- MATH: ``problem`` and ``solution`` holding a ``\\boxed{...}`` (or ``problem`` and ``answer``).

A configuration is ``MODEL:QUANT:METHOD[:POLICY]``; METHOD is ``plain`` (greedy), ``orchestrated``
(the step graph under POLICY, ``default`` when absent) or ``scK`` (self-consistency: K sampled chains,
majority vote). Every problem becomes an :class:`~orchestrator.errors.InputError` naming the line or
the string.

>>> parse_config("qwen2.5-coder-0.5b:sim-nf4:sc4").k
4
>>> parse_config("qwen2.5-coder-0.5b:sim-nf4:orchestrated:arithmetic").id
'qwen2.5-coder-0.5b:sim-nf4:orchestrated:arithmetic'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import InputError, QslmError

Method = Literal["plain", "orchestrated", "sc"]
MAX_SC_K = 64
_SC = re.compile(r"^sc(\d+)$")


@dataclass(frozen=True)
class EvalQuestion:
    """One question of a suite, with its gold answer."""

    id: str  # the record's own "id", else a hash of the question text (stable when lines move)
    index: int  # position in the file (0-based), for ordering and --limit
    question: str
    gold: str
    line: int  # 1-based line number in the file, for messages


@dataclass(frozen=True)
class EvalConfig:
    """One configuration compared in an evaluation: ``model × quant × method × policy``."""

    model: str  # catalog name, folder, GGUF file or hub id
    quant: str  # "none" is the reference precision
    method: Method
    k: int = 1  # chains per question (self-consistency); 1 otherwise
    policy: str | None = None  # orchestrated: the policy; plain/sc: the prompt's policy (None = "plain")

    @property
    def method_label(self) -> str:
        return f"sc{self.k}" if self.method == "sc" else self.method

    @property
    def id(self) -> str:
        """The canonical string: the resume key (with the question id) and the label in reports."""
        base = f"{self.model}:{self.quant}:{self.method_label}"
        return f"{base}:{self.policy}" if self.policy else base

    @property
    def policy_name(self) -> str:
        return self.policy or ("default" if self.method == "orchestrated" else "plain")

    @property
    def load_key(self) -> tuple[str, str]:
        return (self.model, self.quant)


def parse_config(text: str) -> EvalConfig:
    """Parse ``MODEL:QUANT:METHOD[:POLICY]``; a bad string raises InputError saying what is wrong.

    >>> parse_config("m:none:plain").id
    'm:none:plain'
    >>> parse_config("m:none:beam")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    orchestrator.errors.InputError: config 'm:none:beam': unknown method 'beam'; use plain, orchestrated or scK ...
    """
    from orchestrator.quantize import parse_quant

    raw = text.strip()
    parts = raw.split(":")
    if len(parts) < 3 or not all(p.strip() for p in parts[:3]):
        raise InputError(f"config {text!r}: expected MODEL:QUANT:METHOD[:POLICY], e.g. mymodel:sim-nf4:plain")
    model, quant, method = (p.strip() for p in parts[:3])
    policy = ":".join(parts[3:]).strip() or None
    try:
        quant = parse_quant(quant).name
    except QslmError as exc:
        raise InputError(f"config {text!r}: {exc}") from None
    method = method.lower()
    if method in ("plain", "greedy"):
        return EvalConfig(model, quant, "plain", 1, None if policy == "plain" else policy)
    if method in ("orchestrated", "orch"):
        return EvalConfig(model, quant, "orchestrated", 1, policy or "default")
    match = _SC.match(method)
    if match is None:
        raise InputError(f"config {text!r}: unknown method {method!r}; use plain, orchestrated or scK (K = 2..64)")
    k = int(match.group(1))
    if not 2 <= k <= MAX_SC_K:
        raise InputError(f"config {text!r}: self-consistency needs 2 to {MAX_SC_K} chains, got {k}")
    return EvalConfig(model, quant, "sc", k, None if policy == "plain" else policy)


def gold_from_record(record: dict[str, Any]) -> str | None:
    """The gold answer of a GSM8K- or MATH-style record, or None when it has none.

    >>> gold_from_record({"question": "q", "answer": "2 + 2 = 4\\n#### 4"})
    '4'
    >>> gold_from_record({"problem": "p", "solution": "so $\\\\boxed{\\\\frac{1}{2}}$."})
    '\\\\frac{1}{2}'
    """
    from verifiers import extract_answer

    if "problem" in record:
        answer = record.get("answer")
        if isinstance(answer, (str, int, float)) and str(answer).strip():
            return str(answer).strip()
        solution = record.get("solution")
        return extract_answer(solution, strategies=("boxed",)) if isinstance(solution, str) else None
    answer = record.get("answer")
    if isinstance(answer, (int, float)):
        return str(answer)
    if not isinstance(answer, str):
        return None
    if "####" not in answer:
        return None
    return answer.rsplit("####", 1)[1].strip() or None


def load_questions(path: str | Path, *, limit: int | None = None) -> list[EvalQuestion]:
    """Read a JSONL suite; the first ``limit`` questions (all when None). Bad lines name their number."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"question file {path} does not exist")
    if limit is not None and limit < 0:
        raise InputError(f"--limit must be non-negative, got {limit}")
    out: list[EvalQuestion] = []
    seen: dict[str, int] = {}
    # lines decoded one by one, so that a byte that is not UTF-8 is named by its line (any line ending)
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if limit is not None and len(out) >= limit:
            break
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")  # a byte-order mark may open the file
        except UnicodeDecodeError:
            raise InputError(f"{where}: not UTF-8 text") from None
        if not line.strip():
            continue
        question = _question(line, where, index=len(out), lineno=lineno)
        seen[question.id] = seen.get(question.id, 0) + 1
        if seen[question.id] > 1:
            question = dataclasses.replace(question, id=f"{question.id}-{seen[question.id]}")
        out.append(question)
    return out


def _question(line: str, where: str, *, index: int, lineno: int) -> EvalQuestion:
    """One question from one JSON line of a suite; ``where`` (file:line) opens every error."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
    text = record.get("question", record.get("problem"))
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: needs a non-empty 'question' (GSM8K) or 'problem' (MATH) field")
    gold = gold_from_record(record)
    if gold is None:
        hint = "a 'solution' with \\boxed{...}" if "problem" in record else "an 'answer' ending in '#### N'"
        raise InputError(f"{where}: no gold answer found; expected {hint}")
    qid = str(record["id"]) if record.get("id") not in (None, "") else _text_id(text)
    return EvalQuestion(qid, index, text.strip(), gold, lineno)


def _text_id(text: str) -> str:
    return "q" + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:10]
