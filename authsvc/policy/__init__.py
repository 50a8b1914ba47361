"""What may a verified identity do? Policy files in, ``Decision`` out.

``load_policy`` (the only file I/O) parses YAML into a frozen ``Policy``; ``evaluate`` is the
pure decision the service calls, and ``explain`` is the same evaluation with a per-rule trace
for tools. The file format is documented in ``docs/policy.md`` and ``policy.model``.
"""

from authsvc.policy.engine import evaluate, explain, refuse_forbidden
from authsvc.policy.load import load_policy, load_policy_text
from authsvc.policy.model import Effect, Policy
from authsvc.policy.source import DuplicateDefinitionError, Location
from authsvc.policy.subjects import subject_matches, validate_subject
from authsvc.policy.trace import Evaluation, RuleTrace

__all__ = [
    "DuplicateDefinitionError",
    "Effect",
    "Evaluation",
    "Location",
    "Policy",
    "RuleTrace",
    "evaluate",
    "explain",
    "load_policy",
    "load_policy_text",
    "refuse_forbidden",
    "subject_matches",
    "validate_subject",
]
