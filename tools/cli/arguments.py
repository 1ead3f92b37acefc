"""What the commands' arguments share: argument types and checks that fail before any work."""

from __future__ import annotations

import argparse
from typing import TypeAlias

from modelfn.artifact import ArtifactError, is_alias

# What add_subparsers() returns; each command module adds its sub-commands to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DATA_HELP = "data root (default: $MODELFN_DATA_DIR, then ../shared/data)"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


def check_aliases(aliases: list[str]) -> None:
    for alias in aliases:
        if not is_alias(alias):
            raise ArtifactError(
                f"alias {alias!r} is not valid: lower-case letters, digits and single hyphens, "
                "starting with a letter (e.g. latest, prod, canary-2)"
            )
