"""Deployment settings, read from the CDK context (`cdk.json`, or `-c modelfn:<key>=<value>`).

Every key but `alarm-email` is required and lives in `cdk.json`, so the file is the one place a
deployment is described; a missing or bad key stops `cdk synth` with the key's name and how to fix it.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from infra.packaging import CpuArchitecture, PythonVersion, unloadable_python_reason

CONTEXT_PREFIX = "modelfn:"

RD = logs.RetentionDays
# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION: dict[int, logs.RetentionDays] = {
    1: RD.ONE_DAY, 3: RD.THREE_DAYS, 5: RD.FIVE_DAYS, 7: RD.ONE_WEEK, 14: RD.TWO_WEEKS,
    30: RD.ONE_MONTH, 60: RD.TWO_MONTHS, 90: RD.THREE_MONTHS, 120: RD.FOUR_MONTHS,
    150: RD.FIVE_MONTHS, 180: RD.SIX_MONTHS, 365: RD.ONE_YEAR, 400: RD.THIRTEEN_MONTHS,
    545: RD.EIGHTEEN_MONTHS, 731: RD.TWO_YEARS, 1096: RD.THREE_YEARS, 1827: RD.FIVE_YEARS,
    2192: RD.SIX_YEARS, 2557: RD.SEVEN_YEARS, 2922: RD.EIGHT_YEARS, 3288: RD.NINE_YEARS,
    3653: RD.TEN_YEARS,
}  # fmt: skip


class InfraSettings(BaseModel):
    """One deployment of modelfn: a stack holding the bucket, the functions and the API."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    stack_name: str = Field(
        alias="stack-name", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
        description="CloudFormation stack name; one per stage and account/region.",
    )  # fmt: skip
    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{0,15}$", description="Tagged on every resource.")
    python_version: PythonVersion = Field(
        alias="python-version",
        description="Lambda Python runtime; the layer's wheels must load on its OS (see packaging).",
    )
    architecture: CpuArchitecture = Field(
        description="Lambda CPU; the dependency layer's wheels are fetched for the same one.",
    )
    log_retention_days: int = Field(alias="log-retention-days")
    bucket_encryption: Literal["s3-managed", "kms"] = Field(alias="bucket-encryption")
    bucket_access_logs: bool = Field(
        alias="bucket-access-logs", description="Write S3 server access logs to a second bucket."
    )
    # The one optional key: absent from cdk.json, so no deployment emails anyone by surprise.
    alarm_email: str | None = Field(
        default=None, alias="alarm-email", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Subscribed to the alarm topic (AWS emails it a confirmation link first).",
    )  # fmt: skip

    @property
    def log_retention(self) -> logs.RetentionDays:
        return LOG_RETENTION[self.log_retention_days]

    @field_validator("python_version")
    @classmethod
    def _layer_loads_on_runtime(cls, python: PythonVersion) -> PythonVersion:
        # Caught here, before pip runs: the Docker fallback would fail without saying why.
        reason = unloadable_python_reason(python)
        if reason is not None:
            raise ValueError(f"{python} cannot load the dependency layer: {reason}")
        return python

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_period(cls, days: int) -> int:
        if days not in LOG_RETENTION:
            allowed = ", ".join(str(d) for d in LOG_RETENTION)
            raise ValueError(f"{days} is not a CloudWatch retention period; use one of: {allowed}")
        return days


class SettingsError(ValueError):
    """The CDK context lacks a modelfn setting or holds a bad one; the message names the key."""


def settings_from_context(node: Node) -> InfraSettings:
    """Read every `modelfn:<key>` of InfraSettings from the construct tree's context."""
    raw: dict[str, Any] = {}
    for name, field in InfraSettings.model_fields.items():
        key = field.alias or name  # the context spelling, e.g. "log-retention-days"
        value = node.try_get_context(CONTEXT_PREFIX + key)
        if value is not None:
            raw[key] = value
    if not raw:
        raise SettingsError(
            "CDK context has no modelfn:* keys; run the app through the CDK CLI "
            "(`npx cdk synth` from the repository root), which reads them from cdk.json"
        )
    try:
        return InfraSettings.model_validate(raw)
    except ValidationError as exc:
        # Errors are located by alias, which is the key as written in cdk.json.
        problems = "; ".join(
            f"{CONTEXT_PREFIX}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(
            f'CDK context: {problems}. Set it under "context" in cdk.json '
            "or pass -c modelfn:<key>=<value>"
        ) from exc
