"""Code deploys, canaried: each model function's stage alias moves to the version `cdk deploy`
published through CodeDeploy, which shifts traffic as the stage's `code-deploy` setting says
and rolls back by itself when the function's deploy alarms go off.

A model *version* (the weights the function serves) moves with `modelfn promote`; this is about
the function's *code and configuration*, which change only with a deploy. Without a deployment
group CloudFormation points the alias at the new Lambda version at once, for every caller.

The deploy alarms watch the alias (so both versions while traffic shifts), over one-minute
periods so a five-minute canary sees several: crashes and timeouts (Lambda's Errors) plus the
5xx answers the app gives itself (the handler's ServerErrors metric, functions/observability.py:
a route that raises is answered 500 by the app, which Lambda counts as a success), and a p99
duration above 80% of the timeout. Each also notifies the stage's alarm topic.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.monitoring import DURATION_TIMEOUT_FRACTION, emf_metric
from infra.settings import CodeDeployConfig

# Each of infra.settings.CodeDeployConfig's names, as CDK spells it.
CONFIGS: dict[str, codedeploy.ILambdaDeploymentConfig] = {
    "LambdaAllAtOnce": codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
    "LambdaCanary10Percent5Minutes": codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
    "LambdaCanary10Percent10Minutes": (
        codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_10_MINUTES
    ),
    "LambdaCanary10Percent15Minutes": (
        codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_15_MINUTES
    ),
    "LambdaCanary10Percent30Minutes": (
        codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_30_MINUTES
    ),
    "LambdaLinear10PercentEvery1Minute": (
        codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE
    ),
    "LambdaLinear10PercentEvery2Minutes": (
        codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_2_MINUTES
    ),
    "LambdaLinear10PercentEvery3Minutes": (
        codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_3_MINUTES
    ),
    "LambdaLinear10PercentEvery10Minutes": (
        codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_10_MINUTES
    ),
}
DEPLOY_ALARM_PERIOD = Duration.minutes(1)  # a 5-minute canary step spans five of them
DEPLOY_ERRORS_THRESHOLD = 1  # crashes, timeouts and 5xx answers per minute


class CodeDeploy(Construct):
    """A deployment group and its rollback alarms for each model function's stage alias."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        aliases: Mapping[str, lambda_.Alias],
        timeouts_s: Mapping[str, int],
        config: CodeDeployConfig,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        action = cw_actions.SnsAction(topic)
        self.alarms: dict[str, list[cloudwatch.Alarm]] = {}
        self.groups: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        self.application = codedeploy.LambdaApplication(self, "Application")  # one per stage
        # CodeDeploy's own role, written out: AWS's AWSCodeDeployRoleForLambdaLimited allows
        # these on every alias and alarm of the account ("*"); here only this stage's.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description="CodeDeploy: shift this stage's function aliases, read their alarms",
        )
        for name, alias in aliases.items():
            alarms = self._alarms(name, alias, timeouts_s[name])
            for alarm in alarms:
                alarm.add_alarm_action(action)
                alarm.add_ok_action(action)  # as every alarm of the stage
            self.alarms[name] = alarms
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=[
                        "lambda:GetAlias",
                        "lambda:UpdateAlias",
                        "lambda:GetProvisionedConcurrencyConfig",
                    ],
                    resources=[alias.version.lambda_.function_arn, alias.function_arn],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["cloudwatch:DescribeAlarms"],
                    resources=[alarm.alarm_arn for alarm in alarms],
                )
            )
            self.groups[name] = codedeploy.LambdaDeploymentGroup(
                self,
                f"{name}-group",
                application=self.application,
                # A group attaches AWS's managed policy to any role it may change: this role's
                # own statements are all CodeDeploy needs without lifecycle hooks (none here).
                role=self.role.without_policy_updates(),
                alias=alias,
                deployment_config=CONFIGS[config],
                alarms=list(alarms),
                auto_rollback=codedeploy.AutoRollbackConfig(
                    failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
                ),
            )

    def _alarms(self, name: str, alias: lambda_.Alias, timeout_s: int) -> list[cloudwatch.Alarm]:
        errors = cloudwatch.MathExpression(
            expression="FILL(crashes, 0) + FILL(answered, 0)",
            using_metrics={
                "crashes": alias.metric_errors(period=DEPLOY_ALARM_PERIOD, statistic="Sum"),
                "answered": emf_metric("ServerErrors", name, "Sum", period=DEPLOY_ALARM_PERIOD),
            },
            label=f"{name}: crashes, timeouts and 5xx answers",
            period=DEPLOY_ALARM_PERIOD,
        )
        limit_ms = DURATION_TIMEOUT_FRACTION * timeout_s * 1000
        return [
            cloudwatch.Alarm(
                self,
                f"{name}-deploy-errors",
                alarm_description=(
                    f"modelfn {name}: crashes, timeouts or 5xx answers on the stage alias; "
                    "during a code deploy CodeDeploy rolls the alias back"
                ),
                metric=errors,
                threshold=DEPLOY_ERRORS_THRESHOLD,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            cloudwatch.Alarm(
                self,
                f"{name}-deploy-p99",
                alarm_description=(
                    f"modelfn {name}: p99 duration on the stage alias above "
                    f"{DURATION_TIMEOUT_FRACTION:.0%} of the {timeout_s} s timeout; during a "
                    "code deploy CodeDeploy rolls the alias back"
                ),
                metric=alias.metric_duration(period=DEPLOY_ALARM_PERIOD, statistic="p99"),
                threshold=limit_ms,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        ]
