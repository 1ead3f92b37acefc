"""One Lambda function serving one registry model, reading only that model's artifacts.

The registry entry's `serving.runtime` picks the package: "onnxruntime" is a zip function (the
code asset plus the dependency layer), "torch" a container image function (the Dockerfile's
image). Both get the same environment, memory, timeout, log group and S3 read grant.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnElement, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.artifact_bucket import ArtifactBucket
from infra.packaging import LAMBDA_ARCHITECTURES, LAMBDA_PYTHONS, CpuArchitecture, PythonVersion
from modelfn.registry import ModelEntry

HANDLER = "functions.handler.handler"
# Lambda's only writable disk; artifacts are fetched here once per execution environment.
CACHE_DIR = "/tmp/modelfn"


class ModelFunction(Construct):
    """The function for `entry`: runtime, memory, timeout and alias come from its `serving` table.

    `code` and `layers` make the zip function; `image` the container image function, and is
    required only when the entry's runtime is torch.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        entry: ModelEntry,
        artifacts: ArtifactBucket,
        code: lambda_.Code,
        layers: list[lambda_.ILayerVersion],
        image: lambda_.DockerImageCode | None = None,
        python: PythonVersion,
        architecture: CpuArchitecture,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.model_name = entry.name
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            # Logs are disposable with the stack; the artifacts bucket is what is kept.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Our own role instead of CDK's default one with AWSLambdaBasicExecutionRole, which may
        # create log groups and write to every log group in the account: this one writes only
        # to this function's log group.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"modelfn {entry.name} function: its own logs, its own model's artifacts",
        )
        self.log_group.grant_write(self.role)
        description = (
            f"modelfn inference for {entry.name} ({entry.task}, alias {entry.serving.alias})"
        )
        environment = {
            "MODELFN_MODEL": entry.name,
            "MODELFN_STORE_URI": artifacts.store_uri,
            "MODELFN_ALIAS": entry.serving.alias,
            "MODELFN_CACHE_DIR": CACHE_DIR,
            # The `service` key of every log line (functions/log.py); the local deployment
            # sets the same, so one CloudWatch query works for both.
            "POWERTOOLS_SERVICE_NAME": f"modelfn-{entry.name}",
        }
        # X-Ray by setting (models.toml `serving.tracing`); CDK grants the role its X-Ray writes.
        tracing = lambda_.Tracing.ACTIVE if entry.serving.tracing else lambda_.Tracing.DISABLED
        self.function: lambda_.Function
        if entry.serving.runtime == "torch":
            if image is None:
                raise ValueError(
                    f"ModelFunction {entry.name}: serving.runtime is torch, which deploys a "
                    "container image; pass image= (infra.container_image.image_code)"
                )
            # The image's CMD names the handler (functions.handler.handler) and its base image
            # the Python; the image sets MODELFN_RUNTIME too, and the function says it again so
            # its configuration shows which engine serves.
            self.function = lambda_.DockerImageFunction(
                self,
                "Function",
                description=f"{description}, torch container image",
                code=image,
                architecture=LAMBDA_ARCHITECTURES[architecture],
                memory_size=entry.serving.memory_mb,
                timeout=Duration.seconds(entry.serving.timeout_s),
                environment={**environment, "MODELFN_RUNTIME": "torch"},
                log_group=self.log_group,
                role=self.role,
                tracing=tracing,
            )
        else:
            self.function = lambda_.Function(
                self,
                "Function",
                description=description,
                runtime=LAMBDA_PYTHONS[python].runtime,
                architecture=LAMBDA_ARCHITECTURES[architecture],
                handler=HANDLER,
                code=code,
                layers=layers,
                memory_size=entry.serving.memory_mb,
                timeout=Duration.seconds(entry.serving.timeout_s),
                environment=environment,
                log_group=self.log_group,
                role=self.role,
                tracing=tracing,
            )
        # Read-only, and only under this model's prefix (`<model>/<version>/...`,
        # `<model>/aliases/...`): one model's function cannot read another model's weights.
        artifacts.grant_read_model(self.function, entry.name)
        self._acknowledge_checks(entry, artifacts)

    def _acknowledge_checks(self, entry: ModelEntry, artifacts: ArtifactBucket) -> None:
        """The cdk-nag findings this function raises by design, each with why it is safe."""
        acknowledgments = [
            Acknowledgment(
                id=(
                    "AwsSolutions-IAM5[Resource::<"
                    f"{_logical_id(artifacts.bucket)}.Arn>/{entry.name}/*]"
                ),
                reason=(
                    f"s3:GetObject on {entry.name}/* only: the function reads every published "
                    "version and alias of its own model, whose keys are not known at deploy "
                    "time; no write, no other model's prefix."
                ),
            ),
        ]
        if entry.serving.runtime != "torch":
            acknowledgments.append(
                Acknowledgment(
                    id="AwsSolutions-L1",
                    reason=(
                        "The Python runtime is pinned by modelfn:python-version on purpose: the "
                        "dependency layer's wheels are built and checked for that runtime "
                        "(infra/packaging.py); moving it is a deliberate change with a rebuild."
                    ),
                )
            )
        if entry.serving.tracing:
            acknowledgments.append(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::*]",
                    reason=(
                        "xray:PutTraceSegments and xray:PutTelemetryRecords, added by CDK for "
                        "active tracing, support no resource-level permissions (Resource must "
                        "be *); they only write traces."
                    ),
                )
            )
        Validations.of(self).acknowledge(*acknowledgments)


def _logical_id(construct: Construct) -> str:
    """How cdk-nag names a resource in a finding: `<LogicalId.Arn>`."""
    element = construct.node.default_child
    assert isinstance(element, CfnElement)
    return Stack.of(element).resolve(element.logical_id)  # type: ignore[no-any-return]
