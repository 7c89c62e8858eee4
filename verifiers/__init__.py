"""Step and answer checkers for model-written (untrusted) reasoning text.

``check_step`` judges the arithmetic of one step; ``extract_answer`` and ``answers_match``
handle final answers; verifiers are found by name in one registry that built-ins and
user code join the same way (``register_verifier``, ``get_verifier``, ``run_verifier``).
"""

from verifiers import builtins as _builtins  # registers "arithmetic" and "final_answer"
from verifiers.answers import answer_value, answers_match, extract_answer
from verifiers.arithmetic import check_step
from verifiers.errors import ExpressionError, LimitExceededError, UnknownVerifierError
from verifiers.parser import Expr, evaluate, parse_expression
from verifiers.registry import (
    Verifier,
    VerifierRegistry,
    get_verifier,
    register_verifier,
    registry,
    run_verifier,
)
from verifiers.verdict import Claim, Status, Verdict

del _builtins

__all__ = [
    "Claim",
    "Expr",
    "ExpressionError",
    "LimitExceededError",
    "Status",
    "UnknownVerifierError",
    "Verdict",
    "Verifier",
    "VerifierRegistry",
    "answer_value",
    "answers_match",
    "check_step",
    "evaluate",
    "extract_answer",
    "get_verifier",
    "parse_expression",
    "register_verifier",
    "registry",
    "run_verifier",
]
