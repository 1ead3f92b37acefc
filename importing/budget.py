"""Will the imported version fit the function that serves it? Checked before anything is written,
with modelfn/budget.py's one computation (/tmp, memory, the init window)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from importing.errors import ImportRefused
from modelfn.budget import Finding, version_budget
from modelfn.registry import ServingEntry

FLAGS = {"memory_mb": "--memory-mb", "ephemeral_storage_mb": "--ephemeral-storage-mb"}


def check_budget(
    file_bytes: Mapping[str, int], serving: ServingEntry, log: Callable[[str], None]
) -> None:
    """ImportRefused at the first setting the version cannot fit; warnings via `log`."""
    budget = version_budget(file_bytes, serving)
    for refusal in budget.refusals:
        raise ImportRefused(_with_flag(refusal))
    for warning in budget.warnings:
        log(f"warning: {_with_flag(warning)}")


def _with_flag(finding: Finding) -> str:
    """The message, with the import flag that writes the setting into a new entry."""
    flag = FLAGS.get(finding.setting)
    if flag is None or finding.value is None:
        return finding.message
    return f"{finding.message} (or {flag} {finding.value} for a new modelfn import entry)"
