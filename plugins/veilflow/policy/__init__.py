"""Policy files: typed models, loading with line numbers, and the stable policy hash."""

from veilflow.policy.dataset import DatasetPolicy
from veilflow.policy.loader import (
    PolicyFolder,
    discover_policies,
    load_any_policy,
    load_dataset_policy,
    load_policy,
    load_policy_folder,
    parse_any_policy,
    parse_policy,
)
from veilflow.policy.model import ColumnSpec, Policy

__all__ = [
    "ColumnSpec",
    "DatasetPolicy",
    "Policy",
    "PolicyFolder",
    "discover_policies",
    "load_any_policy",
    "load_dataset_policy",
    "load_policy",
    "load_policy_folder",
    "parse_any_policy",
    "parse_policy",
]
