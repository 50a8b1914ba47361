"""What may a verified identity do? Policy files in, ``Decision`` out.

``load_policy`` (the only file I/O) parses YAML into a frozen ``Policy``. The file format is
documented in ``docs/policy.md`` and ``policy.model``.
"""

from authsvc.policy.load import load_policy, load_policy_text
from authsvc.policy.model import Effect, Policy
from authsvc.policy.source import DuplicateDefinitionError, Location
from authsvc.policy.subjects import subject_matches, validate_subject

__all__ = [
    "DuplicateDefinitionError",
    "Effect",
    "Location",
    "Policy",
    "load_policy",
    "load_policy_text",
    "subject_matches",
    "validate_subject",
]
