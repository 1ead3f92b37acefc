"""Deployment stages (dev, staging, prod): which `modelfn:` context keys a stage deploys with.

The CDK app (infra/settings.py) and `modelfn promote` both read a stage through this module, so
the stack a stage deploys and the model alias its functions serve are decided in one place.
Plain data only: no aws_cdk import, so the CLI stays quick.

The context lives in cdk.json. Keys shared by every stage sit at the top level as
`modelfn:<key>`; keys a stage sets for itself sit in its table under `modelfn:stages`:

    "modelfn:log-retention-days": 30,                      <- not allowed beside the one below
    "modelfn:stages": {"prod": {"log-retention-days": 365, ...}}

A key may live in one place or the other, never both, so no value is silently shadowed (a
`-c modelfn:<key>=...` on the command line for a key a stage table sets is refused for the same
reason). `-c stage=prod` picks the stage; without it the stage is dev.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelfn.artifact import ALIAS_MAX, ALIAS_PATTERN
from modelfn.registry import REPO_ROOT, ModelEntry

CONTEXT_PREFIX = "modelfn:"
STAGES_KEY = CONTEXT_PREFIX + "stages"
# Plain `stage`, not `modelfn:stage`: `cdk deploy -c stage=prod` is what devops type.
STAGE_KEY = "stage"
DEFAULT_STAGE = "dev"
CDK_JSON = REPO_ROOT / "cdk.json"


class StageError(ValueError):
    """The stage or its context is unusable; the message names the key and how to fix it."""


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The "context" object of cdk.json (what `cdk synth` hands the app before any `-c`)."""
    try:
        context = json.loads(path.read_text(encoding="utf-8"))["context"]
    except (OSError, ValueError, KeyError) as exc:
        raise StageError(f"cannot read the context of {path}: {exc!r}") from exc
    if not isinstance(context, dict):
        raise StageError(f'{path}: "context" must be an object')
    return context


def stage_names(context: Mapping[str, Any]) -> list[str]:
    """The stages cdk.json describes, in file order."""
    stages = context.get(STAGES_KEY)
    if not isinstance(stages, dict) or not stages:
        raise StageError(
            f'cdk.json needs "{STAGES_KEY}": an object with one table per stage '
            '(e.g. "dev", "staging", "prod"); see docs/deploy.md'
        )
    return list(stages)


def selected_stage(context: Mapping[str, Any]) -> str:
    """The stage `-c stage=NAME` picked (dev without it); StageError listing the stages."""
    stage = context.get(STAGE_KEY, DEFAULT_STAGE)
    names = stage_names(context)
    if stage not in names:
        raise StageError(
            f"unknown stage {stage!r} (-c {STAGE_KEY}=...); cdk.json describes: {', '.join(names)}"
        )
    return str(stage)


def stage_context(context: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """Every `modelfn:` key for `stage`, without the prefix: the shared ones plus its table."""
    table = context.get(STAGES_KEY, {}).get(stage)
    if not isinstance(table, dict):
        raise StageError(f'cdk.json: "{STAGES_KEY}" has no table for stage {stage!r}')
    shared = {
        key.removeprefix(CONTEXT_PREFIX): value
        for key, value in context.items()
        if key.startswith(CONTEXT_PREFIX) and key != STAGES_KEY
    }
    both = sorted(set(shared) & set(table))
    if both:
        raise StageError(
            f"{', '.join(CONTEXT_PREFIX + key for key in both)}: set both as a shared key and in "
            f'"{STAGES_KEY}".{stage}; keep one of the two (a shared key applies to every stage)'
        )
    return {**shared, **table, "stage": stage}


class StageTarget(BaseModel):
    """What `modelfn promote` needs of a stage: its stack and the alias its functions serve."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    stage: str
    stack_name: str = Field(alias="stack-name")
    # Absent: every function serves its registry entry's `serving.alias`.
    model_alias: str | None = Field(
        default=None, alias="model-alias", pattern=ALIAS_PATTERN, max_length=ALIAS_MAX
    )

    def alias_for(self, entry: ModelEntry) -> str:
        """The model alias the stage's function for `entry` follows."""
        return self.model_alias or entry.serving.alias


def stage_target(stage: str, context: Mapping[str, Any] | None = None) -> StageTarget:
    """The stack and served alias of `stage`, from cdk.json unless `context` is given."""
    context = cdk_json_context() if context is None else context
    if stage not in stage_names(context):
        raise StageError(
            f"unknown stage {stage!r}; cdk.json describes: {', '.join(stage_names(context))}"
        )
    try:
        return StageTarget.model_validate(stage_context(context, stage))
    except ValidationError as exc:
        # A missing stack-name or a malformed model-alias would otherwise surface as a traceback.
        raise StageError(f'cdk.json: "{STAGES_KEY}".{stage}: {exc}') from exc
