"""One stage's deployment: artifact bucket, one function per registry model, one HTTP API,
alarms and a dashboard, and optionally the CloudFront distribution of edge bundles."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, Aws, CfnOutput, Stack, Token
from constructs import Construct

from infra.budget_check import check_budgets
from infra.constructs.artifact_bucket import ArtifactBucket
from infra.constructs.canary_checker import CanaryChecker
from infra.constructs.capture_delivery import CaptureDelivery, refuse_unprotected_raw
from infra.constructs.code_deploy import CodeDeploy
from infra.constructs.dependency_layer import DependencyLayer
from infra.constructs.edge_distribution import EdgeDistribution
from infra.constructs.inference_api import InferenceApi
from infra.constructs.log_key import log_key
from infra.constructs.model_function import ModelFunction
from infra.constructs.monitoring import Monitoring
from infra.container_image import image_code
from infra.function_code import function_code
from infra.packaging import CpuArchitecture
from infra.preflight import deploy_region, preflight
from infra.settings import LOG_RETENTION, InfraSettings
from modelfn.api_routes import MODEL_ROUTES, PLAYGROUND_ROUTES
from modelfn.registry import Registry

# Logical-id suffixes of the per-CPU layers.
_CPU_IDS: dict[CpuArchitecture, str] = {"arm64": "Arm64", "x86_64": "X86"}


def model_construct_id(model_name: str) -> str:
    """'cifar10-cnn' -> 'Cifar10Cnn': readable logical ids in the template.

    A capital marks each hyphen, except before a digit, which cannot be capitalised; there `_`
    marks it ('a-1b' -> 'A_1b', not the 'A1b' of 'a1b'), so two model names never share an id.
    """
    parts = model_name.split("-")
    construct_id = parts[0].capitalize()
    for part in parts[1:]:
        construct_id += ("_" if part[:1].isdigit() else "") + part.capitalize()
    return construct_id


class ModelfnStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        registry: Registry,
        settings: InfraSettings,
        **stack_props: Any,
    ) -> None:
        # A stage that retains data cannot be deleted by a stray `cdk destroy` either.
        super().__init__(
            scope,
            construct_id,
            stack_name=settings.stack_name,
            termination_protection=settings.retain_data,
            description=f"modelfn {settings.stage}: model functions behind an HTTP API",
            **stack_props,
        )
        self.settings = settings
        self.artifacts = ArtifactBucket(
            self,
            "Artifacts",
            encryption=settings.bucket_encryption,
            access_logs=settings.bucket_access_logs,
            retain=settings.retain_data,
        )
        entries = [registry.get(name) for name in registry.names()]
        # Every log group of the stage under one customer key, where the stage asks for one.
        self.log_key = (
            log_key(self, "LogKey", retain=settings.retain_data)
            if settings.log_encryption == "kms"
            else None
        )
        # Before any asset is built: a setting the region cannot honour fails the synth here.
        checked = preflight(
            stage=settings.stage,
            region=deploy_region() if Token.is_unresolved(self.region) else self.region,
            certificate_arn=settings.certificate_arn,
            edge_distribution=settings.edge_distribution,
            entries=entries,
        )
        for warning in checked.warnings:
            Annotations.of(self).add_warning_v2("modelfn:preflight", warning)
        # Raw inputs in capture records only where the bucket and the log groups are under KMS.
        refuse_unprotected_raw(
            entries,
            stage=settings.stage,
            bucket_encryption=settings.bucket_encryption,
            log_encryption=settings.log_encryption,
        )
        # The versions the functions will serve, against their settings: one that does not fit
        # fails the synth here, naming the setting and a value that would.
        budgets = check_budgets(
            entries,
            setting=settings.budget_store,
            stage=settings.stage,
            model_alias=settings.model_alias,
        )
        for warning in budgets.warnings:
            Annotations.of(self).add_warning_v2("modelfn:budget", warning)
        for line in [*budgets.checked.values(), *budgets.notes]:
            Annotations.of(self).add_info(f"budget: {line}")
        # The zip functions of one CPU share one layer, and the torch functions of one CPU one
        # image: the same handler code serves every model, told which by its environment.
        zip_cpus = sorted(
            {e.serving.lambda_cpu for e in entries if e.serving.runtime == "onnxruntime"}
        )
        image_cpus = sorted({e.serving.lambda_cpu for e in entries if e.serving.runtime == "torch"})
        self.dependency_layers = {
            cpu: DependencyLayer(
                self,
                f"Dependencies{_CPU_IDS[cpu]}",
                python=settings.python_version,
                architecture=cpu,
            )
            for cpu in zip_cpus
        }
        code = function_code(settings.python_version)
        images = {
            cpu: image_code(python=settings.python_version, architecture=cpu) for cpu in image_cpus
        }
        self.functions = {
            entry.name: ModelFunction(
                self,
                model_construct_id(entry.name),
                entry=entry,
                artifacts=self.artifacts,
                code=code,
                layers=(
                    [self.dependency_layers[entry.serving.lambda_cpu].layer]
                    if entry.serving.runtime == "onnxruntime"
                    else []
                ),
                image=images.get(entry.serving.lambda_cpu),
                python=settings.python_version,
                stage=settings.stage,
                model_alias=settings.model_alias or entry.serving.alias,
                log_retention=LOG_RETENTION[
                    entry.serving.log_retention_days or settings.log_retention_days
                ],
                retain=settings.retain_data,
                playground=settings.playground_on,
                log_key=self.log_key,
            )
            for entry in entries
        }
        # Sampled requests of the models that opt in ([models.X.capture]), from their log groups
        # to capture/<model>/<version>/... in the bucket; no stream where no model captures.
        captured = [self.functions[e.name] for e in entries if e.capture.enabled]
        self.capture = (
            CaptureDelivery(
                self,
                "Capture",
                functions=captured,
                artifacts=self.artifacts,
                log_retention=LOG_RETENTION[settings.log_retention_days],
                retain=settings.retain_data,
                log_key=self.log_key,
            )
            if captured
            else None
        )
        self.api = InferenceApi(
            self,
            "Api",
            # The stage's alias: the version this deployment published (SnapStart, provisioned
            # concurrency), not $LATEST.
            functions={name: fn.alias for name, fn in self.functions.items()},
            health_model=registry.names()[0],
            settings=settings,
            log_key=self.log_key,
        )
        CfnOutput(
            self,
            "StoreUri",
            value=self.artifacts.store_uri,
            description=(
                "Artifact store (MODELFN_STORE_URI) for `modelfn train MODEL --publish STORE_URI` "
                "and `modelfn alias MODEL VERSION --alias NAME --store STORE_URI`"
            ),
        )
        # Edge bundles (`modelfn export-edge --publish`) for devices, where the stage asks.
        self.edge = (
            EdgeDistribution(self, "Edge", artifacts=self.artifacts, retain=settings.retain_data)
            if settings.edge_distribution
            else None
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            functions={name: fn.function for name, fn in self.functions.items()},
            http_api=self.api.http_api,
            # Dashboard names are per account and region; the stack name is unique there too.
            dashboard_name=settings.stack_name,
            alarm_email=settings.alarm_email,
        )
        if self.capture is not None:  # a failed capture delivery reaches the stage's readers too
            self.capture.alarm_on_failed_deliveries(self.monitoring.topic)
        # Each function's alias moves to the version this deploy published through CodeDeploy,
        # as the stage says (all at once in dev, a canary in prod), rolled back on its alarms.
        self.code_deploy = CodeDeploy(
            self,
            "CodeDeploy",
            aliases={name: fn.alias for name, fn in self.functions.items()},
            timeouts_s={e.name: e.serving.timeout_s for e in entries},
            config=settings.code_deploy,
            topic=self.monitoring.topic,
        )
        # Canary model versions (docs/serving.md): rolled back or promoted by the models'
        # [canary] limits. It runs the zip functions' code and layer; a stage of torch functions
        # only has no layer to run it on.
        self.canary_checker = (
            CanaryChecker(
                self,
                "CanaryChecker",
                entries=entries,
                aliases={e.name: settings.model_alias or e.serving.alias for e in entries},
                artifacts=self.artifacts,
                code=code,
                layer=self.dependency_layers[zip_cpus[0]].layer,
                architecture=zip_cpus[0],
                python=settings.python_version,
                topic=self.monitoring.topic,
                topic_key=self.monitoring.topic_key,
                log_retention=LOG_RETENTION[settings.log_retention_days],
                retain=settings.retain_data,
                log_key=self.log_key,
            )
            if zip_cpus
            else None
        )
        self._add_outputs()

    def _add_outputs(self) -> None:
        """What `cdk deploy` prints for callers and operators (the API URL is the API's own)."""
        # The routes a caller uses most: the simple predict route and the OIP infer route.
        callable_routes = {"Predict": MODEL_ROUTES[0], "Infer": MODEL_ROUTES[1]}
        for name in self.functions:
            for label, route in callable_routes.items():
                CfnOutput(
                    self,
                    f"{model_construct_id(name)}{label}Url",
                    value=self.api.url + route.for_model(name).path,
                    description=f"{route.method} {name}: {label.lower()} route",
                )
        if self.settings.playground_on:
            # Only where a browser can use it (playground "jwt" or "none"; settings refuse iam).
            asks = " (it asks for a bearer token)" if self.settings.auth == "jwt" else ""
            for name in self.functions:
                CfnOutput(
                    self,
                    f"{model_construct_id(name)}PlaygroundUrl",
                    value=self.api.url + PLAYGROUND_ROUTES[0].for_model(name).path,
                    description=f"Open in a browser: {name}'s playground page and model card{asks}",
                )
        CfnOutput(
            self,
            "ArtifactBucketName",
            value=self.artifacts.bucket.bucket_name,
            description="Published model versions and aliases",
        )
        if self.artifacts.access_log_bucket is not None:
            CfnOutput(
                self,
                "AccessLogBucketName",
                value=self.artifacts.access_log_bucket.bucket_name,
                description="S3 server access logs of the artifact bucket",
            )
        if self.capture is not None:
            CfnOutput(
                self,
                "CaptureStreamName",
                value=self.capture.stream.ref,
                description="Firehose stream writing captured requests to capture/ in the bucket",
            )
        if self.edge is not None:
            CfnOutput(
                self,
                "EdgeDistributionUrl",
                value=self.edge.url,
                description="Edge bundles: <url>/<model>/<version>/bundle.json, then the bundle",
            )
        CfnOutput(
            self,
            "DashboardUrl",
            value=(
                f"https://{Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
                f"#dashboards:name={self.monitoring.dashboard.dashboard_name}"
            ),
            description="CloudWatch dashboard: functions, API and the modelfn EMF metrics",
        )
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.monitoring.topic.topic_arn,
            description="SNS topic every alarm notifies; subscribe more endpoints here",
        )
