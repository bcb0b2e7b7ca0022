"""Policy files: typed models, loading with line numbers, and the stable policy hash."""

from veilflow.policy.loader import (
    PolicyFolder,
    discover_policies,
    load_policy,
    load_policy_folder,
    parse_policy,
)
from veilflow.policy.model import ColumnSpec, Policy

__all__ = [
    "ColumnSpec",
    "Policy",
    "PolicyFolder",
    "discover_policies",
    "load_policy",
    "load_policy_folder",
    "parse_policy",
]
