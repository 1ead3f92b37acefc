"""The public HTTP API: Open Inference Protocol (v2) routes plus a simple predict route per model."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Validations
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from modelfn.api_routes import MODEL_ROUTES, SERVER_ROUTES

# The route list is shared with the local gateway (modelfn.api_routes), so local equals deployed.
# Route.for_model fills in only "{name}"; any other "{param}" (the OIP "{version}") stays an API
# Gateway path parameter that matches one path segment.

# One JSON object per request in the access log: who called which route, the answer and its time.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
}


class InferenceApi(Construct):
    """An API Gateway HTTP API (payload format 2.0) in front of the model functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        health_model: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        if health_model not in functions:
            raise ValueError(
                f"InferenceApi: health_model {health_model!r} has no function; "
                f"functions exist for: {', '.join(functions) or '(none)'}"
            )
        self.http_api = apigw.HttpApi(self, "HttpApi", description="modelfn inference endpoints")
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention,
            # Disposable with the stack, like the functions' logs.
            removal_policy=RemovalPolicy.DESTROY,
        )
        stage = self.http_api.default_stage
        assert stage is not None  # HttpApi creates the $default stage unless told not to
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        Validations.of(self.http_api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason=(
                    "The inference routes are public by design in this release: they run a "
                    "published model on the caller's input, read no user data and write "
                    "nothing; each function reads only its own model's prefix. IAM or JWT "
                    "authorization by context is issue 10 item 2."
                ),
            )
        )
        integrations: dict[str, HttpLambdaIntegration] = {}
        for name, function in functions.items():
            # One invoke permission per function for this whole API, not one per route: a
            # per-route SourceArn carries the path template verbatim (`.../{version}/infer`), and
            # ten routes would mean ten resource-policy statements. API Gateway still invokes a
            # function only through the routes integrated with it here.
            integration = HttpLambdaIntegration(
                f"{name}-integration", function, scope_permission_to_route=False
            )
            integrations[name] = integration
            for route in MODEL_ROUTES:
                concrete = route.for_model(name)
                self.http_api.add_routes(
                    path=concrete.path,
                    methods=[apigw.HttpMethod(concrete.method)],
                    integration=integration,
                )
        # The live/ready health checks need a function behind them; the first model of
        # models.toml (registry.names()[0], chosen by the stack) answers for the deployment.
        for route in SERVER_ROUTES:
            self.http_api.add_routes(
                path=route.path,
                methods=[apigw.HttpMethod(route.method)],
                integration=integrations[health_model],
            )
        self.url = self.http_api.api_endpoint
        output = CfnOutput(self, "Url", value=self.url, description="Base URL of the inference API")
        # A stable name for `cdk deploy` output and scripts (one API per stack).
        output.override_logical_id("ApiUrl")
