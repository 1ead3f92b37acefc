"""What the commands' arguments share: argument types and checks that fail before any work."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from typing import TypeAlias

from modelfn.artifact import ArtifactError, is_alias, is_version
from modelfn.registry import ModelEntry

# What add_subparsers() returns; each command module adds its sub-commands to it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
DATA_HELP = "data root (default: $MODELFN_DATA_DIR, then ../shared/data)"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text}")
    return value


_DURATION = re.compile(r"(\d+)([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def duration(text: str) -> timedelta:
    """A span of time as `30m`, `24h` or `7d`: a whole number of minutes, hours or days."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a whole number >= 1 and m, h or d (30m, 24h, 7d)"
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def check_aliases(aliases: list[str]) -> None:
    for alias in aliases:
        if not is_alias(alias):
            raise ArtifactError(
                f"alias {alias!r} is not valid: lower-case letters, digits and single hyphens, "
                "starting with a letter (e.g. latest, prod, canary-2)"
            )


def canary_percent(value: str) -> int:
    """--canary's value: a whole percent of requests, 1 to 99."""
    try:
        percent = int(value)
    except ValueError:
        percent = 0
    if not 1 <= percent <= 99:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a percent of requests from 1 to 99 (0 and 100 serve one version: "
            "move the alias without --canary)"
        )
    return percent


def add_test_data_arguments(parser: argparse._ActionsContainer) -> None:
    """--data, --text-column, --label-column: what fp32 and int8 are scored on."""
    parser.add_argument(
        "--data",
        help="a trained model: the data root for the parity report (default: $MODELFN_DATA_DIR, "
        "then ../shared/data); an imported model: your data, PATH/<label>/*.png|jpg|jpeg for an "
        "image classifier (a share is held out to calibrate int8 on), a CSV of texts and labels "
        "for a text classifier, a CSV of texts for a feature extractor",
    )
    parser.add_argument(
        "--text-column",
        help="--data CSV of an imported text model: the column of texts (default: text)",
    )
    parser.add_argument(
        "--label-column",
        help="--data CSV of an imported text classifier: the column of label names (default: label)",
    )


# What an imported model's --data holds, by task.
USER_DATA = {
    "image-classification": "your labelled images with --data PATH (PATH/<label>/*.png|jpg|jpeg)",
    "text-classification": "your labelled texts with --data FILE.csv (a header, a text column "
    "and a label column; --text-column, --label-column)",
    "feature-extraction": "your texts with --data FILE.csv (a header and a text column, "
    "--text-column; no labels needed)",
}


def test_data_problem(entry: ModelEntry, args: argparse.Namespace) -> str | None:
    """Why int8 cannot be scored on the version and data asked for (export-edge, quantize), in
    one line, before anything is fetched."""
    name = args.model
    version = getattr(args, "version", None)  # `modelfn import` has none: it makes the version
    if version and not is_version(version):
        return f"--version {version!r} is not a version (see modelfn list)"
    if entry.imported and entry.task not in USER_DATA:
        return (
            f"{name} is an imported {entry.task} model: an edge bundle's runner takes images or "
            "texts, and a tensor graph declares no pre-processing for it to run; serve it through "
            "the function (modelfn serve, make synth)"
        )
    if entry.imported and not args.data:
        return (
            f"{name} was imported, so modelfn holds no test data for its parity report: give "
            f"{USER_DATA[entry.task]}"
        )
    text_model = entry.imported and entry.task in ("text-classification", "feature-extraction")
    if not text_model and (args.text_column or args.label_column):
        return (
            f"--text-column and --label-column name the columns of an imported text model's CSV; "
            f"{name} reads {'images' if entry.imported else 'its own data set'}: drop them"
        )
    if entry.task == "feature-extraction" and args.label_column:
        return (
            f"{name} is a feature extractor: its figures compare the int8 embeddings with fp32's, "
            "so its CSV needs texts only; drop --label-column"
        )
    return None
