"""The stage's canary checker: a small function on a schedule that rolls back or promotes each
model's canary version by the model's `[canary]` limits (functions/canary_checker.py).

It runs the model functions' code asset and dependency layer (the checker is a module of
functions/ and needs nothing they lack), every `CHECK_EVERY_MINUTES`, over every model of the
stage. Its role may read each model's artifacts and alias (the same scoped grant the model
function has), write only the aliases (`<model>/aliases/*`), read CloudWatch metrics and publish
to the stage's alarm topic, where every rollback and promotion is sent.
"""

from __future__ import annotations

import json

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.artifact_bucket import ArtifactBucket
from infra.constructs.model_function import _logical_id
from infra.packaging import LAMBDA_ARCHITECTURES, LAMBDA_PYTHONS, CpuArchitecture, PythonVersion
from modelfn.canary import MODELS_ENV, STORE_ENV, TOPIC_ENV
from modelfn.registry import ModelEntry, service_name

HANDLER = "functions.canary_checker.handler"
# A canary's bake is tens of minutes and a rollback should come within a few: CloudWatch's EMF
# metrics are queryable about a minute after the request, so checking more often buys nothing.
CHECK_EVERY_MINUTES = 5


class CanaryChecker(Construct):
    """One per stage: checks every model's alias (`aliases[name]`) on a schedule."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entries: list[ModelEntry],
        aliases: dict[str, str],
        artifacts: ArtifactBucket,
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        architecture: CpuArchitecture,
        python: PythonVersion,
        topic: sns.ITopic,
        topic_key: kms.IKey,
        log_retention: logs.RetentionDays,
        retain: bool,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=log_key,
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="modelfn canary checker: metrics, the model aliases, the alarm topic",
        )
        self.log_group.grant_write(self.role)
        models = {
            entry.name: {
                "alias": aliases[entry.name],
                "service": service_name(entry.name),
                "limits": entry.canary.model_dump(),
            }
            for entry in entries
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description="modelfn canary checker: rolls back or promotes each model's canary",
            runtime=LAMBDA_PYTHONS[python].runtime,
            handler=HANDLER,
            code=code,
            layers=[layer],
            architecture=LAMBDA_ARCHITECTURES[architecture],
            memory_size=256,  # no model is loaded: the store, two AWS clients, small JSON
            timeout=Duration.seconds(60),
            environment={
                STORE_ENV: artifacts.store_uri,
                MODELS_ENV: json.dumps(models, sort_keys=True),
                TOPIC_ENV: topic.topic_arn,
                "POWERTOOLS_SERVICE_NAME": "modelfn-canary-checker",
            },
            log_group=self.log_group,
            role=self.role,
        )
        for entry in entries:
            artifacts.grant_read_model(self.function, entry.name)
            # Only the aliases: the checker never writes a version's files.
            artifacts.grant_write_aliases(self.function, entry.name)
        # GetMetricData supports no resource-level permissions (Resource must be *).
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        # Named, not grant_publish's kms:GenerateDataKey*: what a publisher to an encrypted
        # topic needs of its key.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
        )
        topic_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey")
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="modelfn canary checker: every model's canary, by its limits",
            schedule=events.Schedule.rate(Duration.minutes(CHECK_EVERY_MINUTES)),
            targets=[targets.LambdaFunction(self.function, retry_attempts=0)],
        )
        bucket_arn = f"<{_logical_id(artifacts.bucket)}.Arn>"
        reasons = {
            "*": (
                "s3:GetObject on {model}/* only: the checker reads the alias and the manifests "
                "of the versions it names, whose keys are not known at deploy time."
            ),
            "aliases/*": (
                "s3:PutObject on {model}/aliases/* only: the checker moves the model's alias (a "
                "conditional PUT); it writes no version's files and deletes nothing."
            ),
        }
        per_model = [
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{bucket_arn}/{entry.name}/{keys}]",
                reason=reason.format(model=entry.name),
            )
            for entry in entries
            for keys, reason in reasons.items()
        ]
        Validations.of(self).acknowledge(
            *per_model,
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "cloudwatch:GetMetricData supports no resource-level permissions (Resource "
                    "must be *); it only reads metrics."
                ),
            ),
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=(
                    "The Python runtime is pinned by modelfn:python-version on purpose: the "
                    "dependency layer the checker shares with the model functions is built for it."
                ),
            ),
        )
