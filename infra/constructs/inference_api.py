"""The HTTP API: Open Inference Protocol (v2) routes plus a simple predict route per model.

Every route is authorised the stage's way (modelfn:auth): IAM (SigV4-signed requests from
principals allowed execute-api:Invoke) by default, a JWT authorizer for an OIDC issuer, or none,
which only an explicit `modelfn:auth = "none"` gives, with a warning on every synth. The one
exception: on a JWT stage with `playground = "jwt"`, the playground page's own files (HTML, CSS,
JS; `modelfn.api_routes.skips_authorizer`) open without a token, since a browser cannot attach
one to a page load; the page's card, plots and predict calls keep the authorizer. The stage
throttles (rate and burst), logs every request as JSON, answers CORS preflights for the origins
configured, and may sit behind a custom domain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aws_cdk import (
    Acknowledgment,
    Annotations,
    ArnFormat,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_integrations import HttpLambdaIntegration
from constructs import Construct

from infra.settings import InfraSettings
from modelfn.api_routes import (
    CORS_HEADERS,
    CORS_MAX_AGE_S,
    CORS_METHODS,
    MODEL_ROUTES,
    PLAYGROUND_ROUTES,
    SERVER_ROUTES,
    Route,
    skips_authorizer,
)

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
    # Who called: the IAM caller's ARN or the JWT's subject (empty when auth is none).
    "caller": "$context.identity.userArn",
    "subject": "$context.authorizer.claims.sub",
    "authError": "$context.authorizer.error",
}


PAGE_FILES_ACKNOWLEDGMENT = (
    'playground "jwt": the page\'s own HTML, CSS and JS (the same for every model, no model data) '
    "answer without a token, because a browser cannot attach one to a page load; the page sends "
    "the user's bearer token on its card, plot and predict calls, whose routes keep the JWT "
    "authorizer. The stage throttles these routes like every other."
)
PUBLIC_API_WARNING = (
    "modelfn:auth is none: every route of this API answers anyone on the internet, and each call "
    "is billed to this account. Use iam or jwt unless the API is meant to be public."
)


def route_authorizer(settings: InfraSettings) -> apigw.IHttpRouteAuthorizer:
    """The authorizer every route gets, as the stage's `auth` setting says."""
    if settings.auth == "iam":
        return authorizers.HttpIamAuthorizer()
    if settings.auth == "jwt":
        assert settings.jwt_issuer is not None  # InfraSettings refuses jwt without an issuer
        return authorizers.HttpJwtAuthorizer(
            "JwtAuthorizer", settings.jwt_issuer, jwt_audience=settings.jwt_audience
        )
    return apigw.HttpNoneAuthorizer()


class InferenceApi(Construct):
    """An API Gateway HTTP API (payload format 2.0) in front of the model functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.IFunction],
        health_model: str,
        settings: InfraSettings,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if health_model not in functions:
            raise ValueError(
                f"InferenceApi: health_model {health_model!r} has no function; "
                f"functions exist for: {', '.join(functions) or '(none)'}"
            )
        self.domain: apigw.DomainName | None = None
        if settings.domain_name is not None:
            assert settings.certificate_arn is not None  # InfraSettings wants both or neither
            self.domain = apigw.DomainName(
                self,
                "Domain",
                domain_name=settings.domain_name,
                certificate=acm.Certificate.from_certificate_arn(
                    self, "Certificate", settings.certificate_arn
                ),
                security_policy=apigw.SecurityPolicy.TLS_1_2,
            )
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            description=f"modelfn {settings.stage} inference endpoints",
            default_authorizer=route_authorizer(settings),
            cors_preflight=(
                apigw.CorsPreflightOptions(
                    allow_origins=settings.cors_origins,
                    allow_methods=[apigw.CorsHttpMethod(m) for m in CORS_METHODS],
                    allow_headers=list(CORS_HEADERS),
                    max_age=Duration.seconds(CORS_MAX_AGE_S),
                )
                if settings.cors_origins
                else None
            ),
            default_domain_mapping=(
                apigw.DomainMappingOptions(domain_name=self.domain) if self.domain else None
            ),
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=settings.log_retention,
            encryption_key=log_key,  # None: CloudWatch Logs' own key (`log-encryption`)
            removal_policy=RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY,
        )
        stage = self.http_api.default_stage
        assert stage is not None  # HttpApi creates the $default stage unless told not to
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            # The log group's Arn attribute ends in ":*"; API Gateway stores the ARN without it,
            # so CloudFormation would report the stage as drifted forever (aws-cdk issue 38796).
            destination_arn=Stack.of(self).format_arn(
                service="logs",
                resource="log-group",
                resource_name=self.access_logs.log_group_name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )
        # Past the rate (and the burst above it) API Gateway answers 429 itself: a runaway
        # client costs no Lambda invocations and cannot starve the other callers' concurrency.
        cfn_stage.default_route_settings = apigw.CfnStage.RouteSettingsProperty(
            throttling_rate_limit=settings.throttle_rate,
            throttling_burst_limit=settings.throttle_burst,
        )
        if settings.auth == "none":
            Annotations.of(self).add_warning_v2("modelfn:public-api", PUBLIC_API_WARNING)
            Validations.of(self.http_api).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG4",
                    reason=(
                        "modelfn:auth is none, set explicitly in cdk.json or with -c for this "
                        "stage, and synth warns about it: the routes run a published model on the "
                        "caller's input, read no user data, write nothing, and are throttled."
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
            # The playground's routes only where the stage turns the page on; every route keeps
            # the stage's authorizer but the page's own files on a JWT stage (skips_authorizer).
            for route in MODEL_ROUTES + (PLAYGROUND_ROUTES if settings.playground_on else ()):
                self._add_route(route.for_model(name), integration, settings)
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
        if self.domain is not None:
            custom = CfnOutput(
                self,
                "CustomDomainUrl",
                value=f"https://{settings.domain_name}",
                description="The API on its custom domain",
            )
            custom.override_logical_id("CustomDomainUrl")
            target = CfnOutput(
                self,
                "CustomDomainTarget",
                value=self.domain.regional_domain_name,
                description=f"Point a CNAME (or Route 53 alias) for {settings.domain_name} here",
            )
            target.override_logical_id("CustomDomainTarget")

    def _add_route(
        self, route: Route, integration: HttpLambdaIntegration, settings: InfraSettings
    ) -> None:
        """One route, with the API's default authorizer unless it is a page file a JWT stage opens."""
        opened = skips_authorizer(route, settings.auth)
        (added,) = self.http_api.add_routes(
            path=route.path,
            methods=[apigw.HttpMethod(route.method)],
            integration=integration,
            authorizer=apigw.HttpNoneAuthorizer() if opened else None,
        )
        if opened:
            Validations.of(added).acknowledge(
                Acknowledgment(id="AwsSolutions-APIG4", reason=PAGE_FILES_ACKNOWLEDGMENT)
            )
