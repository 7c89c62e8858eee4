"""Per-domain policies: the schema and one YAML file per domain.

Built-in policies (``list_policies()``): ``default``, ``arithmetic``, ``word_problems``, ``algebra``,
``tutoring`` and ``plain`` (every intervention off). A user's directory of YAML files registers its own
the same way: ``load_policy("mine", search_dirs=["~/policies"])``.
"""

from policies.loading import dump_policy, list_policies, load_policy, policy_from_dict
from policies.schema import (
    AdaptiveTemperatureConfig,
    ClassWeights,
    ConfidenceConfig,
    EscalationConfig,
    FinalConfig,
    Policy,
    PromptConfig,
    RepairConfig,
    ResampleConfig,
    SamplingConfig,
    StepsConfig,
    TraceConfig,
    resolve_layers,
)

__all__ = [
    "AdaptiveTemperatureConfig",
    "ClassWeights",
    "ConfidenceConfig",
    "EscalationConfig",
    "FinalConfig",
    "Policy",
    "PromptConfig",
    "RepairConfig",
    "ResampleConfig",
    "SamplingConfig",
    "StepsConfig",
    "TraceConfig",
    "dump_policy",
    "list_policies",
    "load_policy",
    "policy_from_dict",
    "resolve_layers",
]
