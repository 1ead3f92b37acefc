"""One Lambda function serving one registry model, reading only that model's artifacts.

The registry entry's `serving` table sets it up: `runtime` picks the package ("onnxruntime" is a
zip function, the code asset plus the dependency layer; "torch" a container image function, the
Dockerfile's image), and memory, timeout, CPU, /tmp size, reserved concurrency, SnapStart or
provisioned concurrency, tracing and log retention follow the entry. The API calls the function
through an alias named after the stage, on the version this deployment published: SnapStart and
provisioned concurrency apply only to published versions.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnElement, Duration, RemovalPolicy, Size, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.artifact_bucket import ArtifactBucket
from infra.packaging import LAMBDA_ARCHITECTURES, LAMBDA_PYTHONS, PythonVersion
from modelfn.capture import RAW_ENV, SAMPLE_RATE_ENV
from modelfn.registry import ModelEntry, service_name

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
        stage: str,
        model_alias: str,
        log_retention: logs.RetentionDays,
        retain: bool,
        playground: bool = False,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.model_name = entry.name
        serving = entry.serving
        if serving.snapstart and not LAMBDA_PYTHONS[python].runtime.supports_snap_start:
            raise ValueError(
                f"{entry.name}: serving.snapstart needs a Lambda Python with SnapStart (3.12 or "
                f"newer); modelfn:python-version is {python}"
            )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=log_key,  # None: CloudWatch Logs' own key (`log-encryption`)
            # A stage that retains data keeps its logs past `cdk destroy` (an audit trail).
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
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
        description = f"modelfn inference for {entry.name} ({entry.task}, alias {model_alias})"
        environment = {
            "MODELFN_MODEL": entry.name,
            "MODELFN_STORE_URI": artifacts.store_uri,
            "MODELFN_ALIAS": model_alias,
            "MODELFN_CACHE_DIR": CACHE_DIR,
            # The `service` key of every log line (functions/log.py); the local deployment
            # sets the same, so one CloudWatch query works for both.
            "POWERTOOLS_SERVICE_NAME": service_name(entry.name),
        }
        if serving.precision == "int8":
            # The version's model.int8.onnx, and never its fp32 graph (models.toml
            # serving.precision); unset, the function serves model.onnx as before.
            environment["MODELFN_PRECISION"] = "int8"
        if entry.capture.enabled:
            # The share of answered requests the function records as capture lines, and whether
            # they hold the raw inputs (models.toml [capture]; infra/constructs/capture_delivery.py
            # delivers them). Unset, the function records nothing.
            environment[SAMPLE_RATE_ENV] = str(entry.capture.sample_rate)
            environment[RAW_ENV] = "1" if entry.capture.raw else "0"
        if playground:
            # The model's page and card (functions/playground/), routed only by such a stage.
            environment["MODELFN_PLAYGROUND"] = "1"
        # X-Ray by setting (models.toml `serving.tracing`); CDK grants the role its X-Ray writes.
        tracing = lambda_.Tracing.ACTIVE if serving.tracing else lambda_.Tracing.DISABLED
        # What both kinds of function take alike (Any: the jsii keyword types differ per key).
        common: dict[str, Any] = {
            "architecture": LAMBDA_ARCHITECTURES[serving.lambda_cpu],
            "memory_size": serving.memory_mb,
            "timeout": Duration.seconds(serving.timeout_s),
            "ephemeral_storage_size": Size.mebibytes(serving.ephemeral_storage_mb),
            "reserved_concurrent_executions": serving.reserved_concurrency,
            "log_group": self.log_group,
            "role": self.role,
            "tracing": tracing,
        }
        self.function: lambda_.Function
        if serving.runtime == "torch":
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
                environment={**environment, "MODELFN_RUNTIME": "torch"},
                **common,
            )
        else:
            self.function = lambda_.Function(
                self,
                "Function",
                description=description,
                runtime=LAMBDA_PYTHONS[python].runtime,
                handler=HANDLER,
                code=code,
                layers=layers,
                environment=environment,
                # The snapshot is taken when `cdk deploy` publishes the version; the handler's
                # hooks (functions/snapstart.py) reconnect and re-seed after each restore.
                snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
                if serving.snapstart
                else None,
                **common,
            )
        # The version this deployment published (a new one whenever code or configuration
        # changes), behind an alias named after the stage that the API integrates with.
        provisioned = serving.provisioned_concurrency
        self.alias = lambda_.Alias(
            self,
            "Alias",
            alias_name=stage,
            version=self.function.current_version,
            description=f"modelfn {stage}: the version the {stage} API calls",
            provisioned_concurrent_executions=provisioned.min if provisioned else None,
        )
        if provisioned is not None:
            # Target tracking on the alias's ProvisionedConcurrencyUtilization: more warm
            # environments while more than target_utilization of them are busy, fewer after.
            self.alias.add_auto_scaling(
                min_capacity=provisioned.min, max_capacity=provisioned.max
            ).scale_on_utilization(utilization_target=provisioned.target_utilization)
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
