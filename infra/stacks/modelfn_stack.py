"""The whole deployment: artifact bucket, one function per registry model, one HTTP API."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.artifact_bucket import ArtifactBucket
from infra.constructs.dependency_layer import DependencyLayer
from infra.constructs.inference_api import InferenceApi
from infra.constructs.model_function import ModelFunction
from infra.constructs.monitoring import Monitoring
from infra.container_image import image_code
from infra.packaging import function_code
from infra.settings import InfraSettings
from modelfn.api_routes import MODEL_ROUTES
from modelfn.registry import Registry


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
        super().__init__(scope, construct_id, stack_name=settings.stack_name, **stack_props)
        self.artifacts = ArtifactBucket(
            self,
            "Artifacts",
            encryption=settings.bucket_encryption,
            access_logs=settings.bucket_access_logs,
        )
        runtimes = {registry.get(name).serving.runtime for name in registry.names()}
        # The zip functions share one layer; a registry of torch models only needs none.
        self.dependency_layer = (
            DependencyLayer(
                self,
                "Dependencies",
                python=settings.python_version,
                architecture=settings.architecture,
            )
            if "onnxruntime" in runtimes
            else None
        )
        layers: list[lambda_.ILayerVersion] = (
            [self.dependency_layer.layer] if self.dependency_layer else []
        )
        # One code asset for all zip functions and one image for all torch functions: the same
        # handler code serves every model, told which by its environment.
        code = function_code()
        image = (
            image_code(python=settings.python_version, architecture=settings.architecture)
            if "torch" in runtimes
            else None
        )
        self.functions = {
            name: ModelFunction(
                self,
                model_construct_id(name),
                entry=registry.get(name),
                artifacts=self.artifacts,
                code=code,
                layers=layers,
                image=image,
                python=settings.python_version,
                architecture=settings.architecture,
                log_retention=settings.log_retention,
            )
            for name in registry.names()
        }
        self.api = InferenceApi(
            self,
            "Api",
            functions={name: fn.function for name, fn in self.functions.items()},
            health_model=registry.names()[0],
            log_retention=settings.log_retention,
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
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            functions={name: fn.function for name, fn in self.functions.items()},
            http_api=self.api.http_api,
            # Dashboard names are per account and region; the stack name is unique there too.
            dashboard_name=settings.stack_name,
            alarm_email=settings.alarm_email,
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
