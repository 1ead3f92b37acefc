"""Deployment settings of one stage, read from the CDK context (cdk.json, or `-c ...`).

`-c stage=dev|staging|prod` picks the stage (dev without it); modelfn/stages.py merges the keys
every stage shares (`modelfn:<key>`) with the stage's own table (`modelfn:stages`). Every key but
the optional ones below lives in cdk.json, so the file is the one place a deployment is
described; a missing or bad key stops `cdk synth` with the key's name and how to fix it.
"""

from __future__ import annotations

import json
from typing import Literal

from aws_cdk import aws_logs as logs
from constructs import Node
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra.packaging import PythonVersion, unloadable_python_reason
from modelfn.api_routes import IAM_PAGE_PROBLEM, PAGE_AUTH_MODES
from modelfn.artifact import ALIAS_MAX, ALIAS_PATTERN
from modelfn.registry import LOG_RETENTION_DAYS
from modelfn.stages import STAGES_KEY, StageError, selected_stage, stage_context

CONTEXT_PREFIX = "modelfn:"
Auth = Literal["iam", "jwt", "none"]

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
assert tuple(LOG_RETENTION) == LOG_RETENTION_DAYS  # one list of periods, two spellings


# CodeDeploy's predefined Lambda configurations, by the names AWS gives them
# (CodeDeployDefault.<name>): what cdk.json's `code-deploy` takes.
CodeDeployConfig = Literal[
    "LambdaAllAtOnce",
    "LambdaCanary10Percent5Minutes",
    "LambdaCanary10Percent10Minutes",
    "LambdaCanary10Percent15Minutes",
    "LambdaCanary10Percent30Minutes",
    "LambdaLinear10PercentEvery1Minute",
    "LambdaLinear10PercentEvery2Minutes",
    "LambdaLinear10PercentEvery3Minutes",
    "LambdaLinear10PercentEvery10Minutes",
]


class InfraSettings(BaseModel):
    """One stage of modelfn: a stack holding the bucket, the functions, the API and the alarms."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    stage: str = Field(pattern=r"^[a-z][a-z0-9-]{0,15}$", description="Tagged on every resource.")
    stack_name: str = Field(
        alias="stack-name", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
        description="CloudFormation stack name; unique per stage, so stages share an account.",
    )  # fmt: skip
    python_version: PythonVersion = Field(
        alias="python-version",
        description="Lambda Python runtime; the layer's wheels must load on its OS (see packaging).",
    )
    log_retention_days: int = Field(
        alias="log-retention-days", description="Default retention of every log group."
    )
    retain_data: bool = Field(
        alias="retain-data",
        description=(
            "true: `cdk destroy` keeps buckets and log groups, and the stack has termination "
            "protection; false (dev): it deletes them, artifacts included."
        ),
    )
    model_alias: str | None = Field(
        default=None, alias="model-alias", pattern=ALIAS_PATTERN, max_length=ALIAS_MAX,
        description="The model alias every function serves; unset: each entry's serving.alias.",
    )  # fmt: skip
    bucket_encryption: Literal["s3-managed", "kms"] = Field(alias="bucket-encryption")
    bucket_access_logs: bool = Field(
        alias="bucket-access-logs", description="Write S3 server access logs to a second bucket."
    )
    auth: Auth = Field(
        description="iam (SigV4, default), jwt (an OIDC issuer) or none (public, warned at synth)."
    )
    jwt_issuer: str | None = Field(default=None, alias="jwt-issuer", pattern=r"^https://\S+$")
    jwt_audience: list[str] = Field(default_factory=list, alias="jwt-audience")
    throttle_rate: float = Field(
        alias="throttle-rate", gt=0, description="Steady requests per second the API accepts."
    )
    throttle_burst: int = Field(
        alias="throttle-burst", ge=1, description="Requests the API accepts at once above the rate."
    )
    cors_origins: list[str] = Field(
        alias="cors-origins", description="Browser origins allowed to call the API; [] = no CORS."
    )
    domain_name: str | None = Field(
        default=None, alias="domain-name", pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$"
    )
    certificate_arn: str | None = Field(
        default=None, alias="certificate-arn", pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/\S+$",
        description="ACM certificate for domain-name, in the stack's region.",
    )  # fmt: skip
    edge_distribution: bool = Field(
        alias="edge-distribution", description="Serve edge/ bundles through CloudFront."
    )
    playground: bool | Auth = Field(
        description=(
            "false, or the auth the playground page works under, which must be the stage's: jwt "
            "(the page's own HTML, CSS and JS open without a token; the page asks for one and "
            "sends it on its calls) or none. iam is refused: a browser cannot sign a page load."
        )
    )
    log_encryption: Literal["cloudwatch", "kms"] = Field(
        alias="log-encryption",
        description=(
            "Log groups at rest: cloudwatch (CloudWatch Logs' own key) or kms (a customer key the "
            "stack creates, with rotation; $1 a month; infra/constructs/log_key.py)."
        ),
    )
    code_deploy: CodeDeployConfig = Field(
        alias="code-deploy",
        description=(
            "How a deploy moves each function's stage alias to its new version: a CodeDeploy "
            "predefined Lambda configuration (LambdaAllAtOnce, LambdaCanary10Percent5Minutes, "
            "...), rolled back by the function's deploy alarms (infra/constructs/code_deploy.py)."
        ),
    )
    budget_store: str = Field(
        alias="budget-store",
        description=(
            "The store whose served versions are checked against their functions' /tmp, memory "
            "and init at synth (infra/budget_check.py): a folder (relative: the repository's), "
            "s3://BUCKET[/PREFIX], or none."
        ),
    )
    # Absent from cdk.json, so no deployment emails anyone by surprise.
    alarm_email: str | None = Field(
        default=None, alias="alarm-email", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="Subscribed to the alarm topic (AWS emails it a confirmation link first).",
    )  # fmt: skip

    @property
    def log_retention(self) -> logs.RetentionDays:
        return LOG_RETENTION[self.log_retention_days]

    @property
    def playground_on(self) -> bool:
        """Whether the stage routes and serves each model's playground page, card and plots."""
        return self.playground is not False

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

    @field_validator("playground")
    @classmethod
    def _page_can_work(cls, playground: bool | Auth, info: ValidationInfo) -> bool | Auth:
        # A field validator, not the model's, so the error names modelfn:playground. `auth` and
        # `stage` are declared above, so they are validated (and in info.data) by now.
        if playground is False:
            return playground
        auth, stage = info.data.get("auth"), info.data.get("stage")
        if auth is None:
            return playground  # auth is itself missing or bad, and reported as such
        fix = (
            'set it to false, or switch the stage to auth jwt and playground "jwt" (the page\'s '
            "own files open; it asks for a token and sends it on every call), or auth none and "
            'playground "none" (the whole API public)'
        )
        if auth not in PAGE_AUTH_MODES:
            raise ValueError(
                f"playground {_shown(playground)} cannot work on stage {stage} with auth {auth}: "
                f"{IAM_PAGE_PROBLEM}; {fix}"
            )
        if playground is True:
            # Explicit, so no route turns public where auth changes later: the value must follow.
            raise ValueError(
                f"playground true on stage {stage}: name the auth the page works under, "
                f'"{auth}" for this stage\'s auth {auth}, or false'
            )
        if playground != auth:
            raise ValueError(
                f"playground {_shown(playground)} on stage {stage} does not match its auth {auth}: "
                f'set playground "{auth}" to serve the page under auth {auth}, or false'
            )
        return playground

    @model_validator(mode="after")
    def _complete(self) -> InfraSettings:
        if self.auth == "jwt" and (self.jwt_issuer is None or not self.jwt_audience):
            raise ValueError(
                "auth jwt needs jwt-issuer (the OIDC issuer URL, https://...) and jwt-audience "
                "(a list of accepted `aud` values)"
            )
        if self.auth != "jwt" and (self.jwt_issuer is not None or self.jwt_audience):
            raise ValueError(f"jwt-issuer and jwt-audience apply to auth jwt, not {self.auth}")
        if (self.domain_name is None) != (self.certificate_arn is None):
            raise ValueError(
                "domain-name and certificate-arn go together: a custom domain needs its ACM "
                "certificate (issued in the stack's region)"
            )
        return self


def _shown(value: object) -> str:
    """A context value as cdk.json spells it: true, "jwt"."""
    return json.dumps(value)


class SettingsError(ValueError):
    """The CDK context lacks a modelfn setting or holds a bad one; the message names the key."""


def settings_from_context(node: Node) -> InfraSettings:
    """The settings of the stage `-c stage=...` picks, from the construct tree's context."""
    context = node.get_all_context()
    if STAGES_KEY not in context:
        raise SettingsError(
            f"CDK context has no {STAGES_KEY}; run the app through the CDK CLI "
            "(`npx cdk synth` from the repository root), which reads it from cdk.json"
        )
    try:
        stage = selected_stage(context)
        raw = stage_context(context, stage)
    except StageError as exc:
        raise SettingsError(f"CDK context: {exc}") from exc
    try:
        return InfraSettings.model_validate(raw)
    except ValidationError as exc:
        # Errors are located by alias, which is the key as written in cdk.json.
        problems = "; ".join(
            f"{CONTEXT_PREFIX}{'.'.join(str(p) for p in err['loc']) or '*'}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(
            f"CDK context, stage {stage}: {problems}. Set it in cdk.json (shared, or in "
            f'"{STAGES_KEY}".{stage}) or pass -c modelfn:<key>=<value> for a shared key'
        ) from exc
