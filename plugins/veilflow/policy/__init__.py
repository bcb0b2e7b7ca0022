"""Policy files: typed models, loading with line numbers, and the stable policy hash."""

from veilflow.policy.loader import discover_policies, load_policy, parse_policy
from veilflow.policy.model import ColumnSpec, Policy

__all__ = ["ColumnSpec", "Policy", "discover_policies", "load_policy", "parse_policy"]
