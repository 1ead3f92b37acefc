"""Alarms and a dashboard for one deployment: each model function, the HTTP API, the EMF metrics.

Every alarm notifies one SNS topic (KMS-encrypted, TLS only); an email address from the context
(`modelfn:alarm-email`) subscribes to it. The dashboard shows the functions' Lambda metrics and
the metrics the handler emits in namespace `modelfn` (functions/observability.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from modelfn.api_routes import MODEL_ROUTES

# The namespace functions/observability.py writes its EMF metrics to.
EMF_NAMESPACE = "modelfn"
# The route whose latency the dashboard plots per model, as the handler names it (a template).
PREDICT_ROUTE = MODEL_ROUTES[0].key  # 'POST /models/{name}/predict'

# --- alarm thresholds and periods -------------------------------------------------------------
# Errors: a Lambda "Errors" datapoint is an invocation that crashed or timed out; the app answers
# bad input and missing models itself (4xx/5xx bodies), so one real error is worth a look.
ERRORS_THRESHOLD = 1  # errors per period
ERRORS_PERIOD = Duration.minutes(5)  # long enough that one burst raises one alarm, not five
# Throttles: any throttle means a caller got 429 because of concurrency limits we set or hit.
THROTTLES_THRESHOLD = 1  # throttled invocations per period
THROTTLES_PERIOD = Duration.minutes(5)
# Duration: p99 near the timeout means the next slow request times out; 80% leaves room to act.
DURATION_TIMEOUT_FRACTION = 0.8  # of the function's timeout
DURATION_PERIOD = Duration.minutes(5)
# 2 of 3 periods: one cold start (model load) in a quiet period must not page anyone alone.
DURATION_EVALUATION_PERIODS = 3
DURATION_DATAPOINTS_TO_ALARM = 2
# API 5xx: percent of requests answered with a 5xx; 5% over 5 minutes is past the odd failed
# cold start and well before most callers notice a broken model.
API_5XX_RATE_THRESHOLD = 5.0  # percent
API_5XX_PERIOD = Duration.minutes(5)
DASHBOARD_PERIOD = Duration.minutes(5)  # the handler's metrics on the dashboard


class Monitoring(Construct):
    """The alarm topic, per-function and API alarms, and the deployment's dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Mapping[str, lambda_.Function],
        http_api: apigw.HttpApi,
        dashboard_name: str,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        # A customer key, not alias/aws/sns: CloudWatch can publish to an encrypted topic only
        # when the key policy lets cloudwatch.amazonaws.com use the key, and AWS-managed key
        # policies cannot be changed.
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="modelfn alarm topic encryption",
            enable_key_rotation=True,
            # It encrypts only alarm notifications in flight; nothing outlives the stack with it.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.topic_key.grant(
            # What SNS needs of a publisher to an encrypted topic; named, not GenerateDataKey*.
            iam.ServicePrincipal("cloudwatch.amazonaws.com"),
            "kms:Decrypt",
            "kms:GenerateDataKey",
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="modelfn alarms",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        # enforce_ssl writes a topic policy, and a topic policy replaces SNS's default one: without
        # this Allow, CloudWatch may not publish and every alarm action fails ("not authorized to
        # perform: SNS:Publish"). Only this account's alarms, in this region.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {
                        "aws:SourceArn": (
                            f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
                        )
                    },
                },
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cw_actions.SnsAction(self.topic)

        self.alarms: list[cloudwatch.Alarm] = []
        for name, function in functions.items():
            self._function_alarms(name, function)
        self._api_alarm(http_api)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)  # the all-clear goes to the same readers

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        self._fill_dashboard(functions, http_api)

    def _alarm(
        self,
        construct_id: str,
        *,
        description: str,
        metric: cloudwatch.IMetric,
        threshold: float,
        comparison: cloudwatch.ComparisonOperator,
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            # No traffic is not a failure: an idle model must not alarm.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarms.append(alarm)

    def _function_alarms(self, name: str, function: lambda_.Function) -> None:
        timeout = function.timeout
        assert timeout is not None  # ModelFunction always sets the registry's timeout_s
        self._alarm(
            f"{name}-errors",
            description=f"modelfn {name}: invocations crashed or timed out",
            metric=function.metric_errors(period=ERRORS_PERIOD, statistic="Sum"),
            threshold=ERRORS_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )
        self._alarm(
            f"{name}-throttles",
            description=f"modelfn {name}: invocations throttled (callers got 429)",
            metric=function.metric_throttles(period=THROTTLES_PERIOD, statistic="Sum"),
            threshold=THROTTLES_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        )
        limit_ms = DURATION_TIMEOUT_FRACTION * timeout.to_milliseconds()
        self._alarm(
            f"{name}-duration-p99",
            description=(
                f"modelfn {name}: p99 duration above {DURATION_TIMEOUT_FRACTION:.0%} of the "
                f"{timeout.to_seconds():g} s timeout; raise serving.timeout_s or memory_mb"
            ),
            metric=function.metric_duration(period=DURATION_PERIOD, statistic="p99"),
            threshold=limit_ms,
            evaluation_periods=DURATION_EVALUATION_PERIODS,
            datapoints_to_alarm=DURATION_DATAPOINTS_TO_ALARM,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

    def _api_alarm(self, http_api: apigw.HttpApi) -> None:
        rate = cloudwatch.MathExpression(
            # Percent; a period without requests counts as 0%, not as missing data.
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={
                "errors": http_api.metric_server_error(period=API_5XX_PERIOD, statistic="Sum"),
                "requests": http_api.metric_count(period=API_5XX_PERIOD, statistic="Sum"),
            },
            period=API_5XX_PERIOD,
            label="5xx rate (%)",
        )
        self._alarm(
            "api-5xx-rate",
            description=(
                f"modelfn API: more than {API_5XX_RATE_THRESHOLD:g}% of requests answered 5xx"
            ),
            metric=rate,
            threshold=API_5XX_RATE_THRESHOLD,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        )

    def _fill_dashboard(
        self, functions: Mapping[str, lambda_.Function], http_api: apigw.HttpApi
    ) -> None:
        names = list(functions)
        width = 12  # two graphs per row on the 24-column grid
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lambda invocations, errors, throttles",
                width=width,
                left=[
                    metric
                    for fn in functions.values()
                    for metric in (
                        fn.metric_invocations(),
                        fn.metric_errors(),
                        fn.metric_throttles(),
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="Lambda duration p99 (ms)",
                width=width,
                left=[fn.metric_duration(statistic="p99") for fn in functions.values()],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"Latency p50 / p99 (ms), {PREDICT_ROUTE}",
                width=width,
                left=[
                    emf_metric("Latency", name, statistic, route=PREDICT_ROUTE)
                    for name in names
                    for statistic in ("p50", "p99")
                ],
            ),
            cloudwatch.GraphWidget(
                title="Errors by model, status and error type",
                width=width,
                left=[
                    cloudwatch.MathExpression(
                        # Status and error type are open-ended, so a search, not a fixed list.
                        expression=(
                            f"SEARCH('{{{EMF_NAMESPACE},service,model,status_code,error_type}} "
                            "MetricName=\"Errors\"', 'Sum', 300)"
                        ),
                        using_metrics={},
                        label="Errors",
                    )
                ],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Cold starts by model and route",
                width=width,
                left=[
                    cloudwatch.MathExpression(
                        expression=(
                            f"SEARCH('{{{EMF_NAMESPACE},service,model,route}} "
                            "MetricName=\"ColdStart\"', 'Sum', 300)"
                        ),
                        using_metrics={},
                        label="ColdStart",
                    )
                ],
            ),
            cloudwatch.GraphWidget(
                title="ModelLoadTime (ms)",
                width=width,
                left=[emf_metric("ModelLoadTime", name, "Maximum") for name in names],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and 5xx",
                width=width,
                left=[http_api.metric_count(statistic="Sum"), http_api.metric_server_error()],
            ),
        )


def emf_metric(
    metric_name: str,
    model: str,
    statistic: str,
    *,
    route: str | None = None,
    period: Duration = DASHBOARD_PERIOD,
) -> cloudwatch.Metric:
    """A handler metric in namespace `modelfn`, with the dimensions observability.py gives it."""
    dimensions = {"service": f"modelfn-{model}", "model": model}
    if route is not None:
        dimensions["route"] = route
    return cloudwatch.Metric(
        namespace=EMF_NAMESPACE,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period,
        label=f"{model} {statistic}",
    )
