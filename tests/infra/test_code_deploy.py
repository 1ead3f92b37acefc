"""Code deploys, canaried (issue 23 item 3): every stage's template moves each function's stage
alias through a CodeDeploy deployment group with the stage's configuration, rolled back by the
function's own deploy alarms, which watch the alias and the app's 5xx answers."""

from __future__ import annotations

from typing import Any

import pytest

from infra.constructs.code_deploy import DEPLOY_ERRORS_THRESHOLD
from infra.constructs.monitoring import DURATION_TIMEOUT_FRACTION
from infra.settings import SettingsError
from modelfn.registry import REPO_ROOT, Registry, load_registry
from modelfn.stages import STAGES_KEY, cdk_json_context
from tests.infra.conftest import Synthesized, settings_for, synthesize

STAGES = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(REPO_ROOT / "models.toml")


@pytest.fixture(scope="module", params=STAGES)
def synth(
    request: pytest.FixtureRequest, registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), request.param)


def resources(synth: Synthesized, kind: str) -> dict[str, dict[str, Any]]:
    return synth.resources(kind)


def test_the_shipped_stages_canary_prod_and_deploy_dev_at_once() -> None:
    stages = cdk_json_context()[STAGES_KEY]
    assert stages["dev"]["code-deploy"] == "LambdaAllAtOnce"
    assert stages["staging"]["code-deploy"] == "LambdaCanary10Percent5Minutes"
    assert stages["prod"]["code-deploy"] == "LambdaCanary10Percent10Minutes"


def test_an_unknown_configuration_is_refused_naming_the_key() -> None:
    with pytest.raises(SettingsError, match="code-deploy"):
        settings_for("dev", **{"code-deploy": "LambdaCanary50Percent1Minute"})


def test_each_function_alias_deploys_through_its_group(
    synth: Synthesized, registry: Registry
) -> None:
    stage = synth.stack.settings.stage
    [application] = resources(synth, "AWS::CodeDeploy::Application").items()
    assert application[1]["Properties"]["ComputePlatform"] == "Lambda"
    groups = resources(synth, "AWS::CodeDeploy::DeploymentGroup")
    assert len(groups) == len(registry.names())
    expected = f"CodeDeployDefault.{synth.stack.settings.code_deploy}"
    for group in groups.values():
        props = group["Properties"]
        assert props["ApplicationName"] == {"Ref": application[0]}
        assert props["DeploymentConfigName"] == expected
        assert props["DeploymentStyle"] == {
            "DeploymentOption": "WITH_TRAFFIC_CONTROL",
            "DeploymentType": "BLUE_GREEN",
        }
        rollback = props["AutoRollbackConfiguration"]
        assert rollback["Enabled"] is True
        assert set(rollback["Events"]) == {
            "DEPLOYMENT_FAILURE",
            "DEPLOYMENT_STOP_ON_REQUEST",
            "DEPLOYMENT_STOP_ON_ALARM",
        }
        assert props["AlarmConfiguration"]["Enabled"] is True
        assert len(props["AlarmConfiguration"]["Alarms"]) == 2
    # The alias update policy is what hands the alias move to CodeDeploy: every alias has one,
    # naming its own group.
    aliases = resources(synth, "AWS::Lambda::Alias")
    assert {a["Properties"]["Name"] for a in aliases.values()} == {stage}
    named = {
        a["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"]["Ref"]
        for a in aliases.values()
    }
    assert named == set(groups)


def test_the_rollback_alarms_watch_the_alias_and_the_apps_5xx(
    synth: Synthesized, registry: Registry
) -> None:
    alarms = resources(synth, "AWS::CloudWatch::Alarm")
    groups = resources(synth, "AWS::CodeDeploy::DeploymentGroup")
    for group in groups.values():
        ids = [a["Name"]["Ref"] for a in group["Properties"]["AlarmConfiguration"]["Alarms"]]
        errors, p99 = (alarms[i]["Properties"] for i in ids)
        # Errors: Lambda's crashes and timeouts on the alias, plus the handler's ServerErrors.
        [summed] = [q for q in errors["Metrics"] if "Expression" in q]
        assert summed["Expression"] == "FILL(crashes, 0) + FILL(answered, 0)"
        stats = [q["MetricStat"] for q in errors["Metrics"] if "MetricStat" in q]
        names = {s["Metric"]["MetricName"]: s for s in stats}
        assert set(names) == {"Errors", "ServerErrors"}
        lambda_dims = {d["Name"] for d in names["Errors"]["Metric"]["Dimensions"]}
        assert lambda_dims == {"FunctionName", "Resource"}  # the alias, not the whole function
        model = next(
            d["Value"]
            for d in names["ServerErrors"]["Metric"]["Dimensions"]
            if d["Name"] == "model"
        )
        assert model in registry.names()
        assert all(s["Period"] == 60 and s["Stat"] == "Sum" for s in stats)
        assert errors["Threshold"] == DEPLOY_ERRORS_THRESHOLD
        assert errors["TreatMissingData"] == "notBreaching"
        # p99: on the alias, against the model's own timeout.
        assert p99["MetricName"] == "Duration" and p99["ExtendedStatistic"] == "p99"
        assert {d["Name"] for d in p99["Dimensions"]} == {"FunctionName", "Resource"}
        timeout_s = registry.get(model).serving.timeout_s
        assert p99["Threshold"] == DURATION_TIMEOUT_FRACTION * timeout_s * 1000
        assert errors["AlarmActions"] and p99["AlarmActions"]  # the stage's alarm topic


def test_codedeploys_role_reaches_only_this_stages_aliases_and_alarms(synth: Synthesized) -> None:
    groups = resources(synth, "AWS::CodeDeploy::DeploymentGroup")
    [role_id] = {g["Properties"]["ServiceRoleArn"]["Fn::GetAtt"][0] for g in groups.values()}
    role = resources(synth, "AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "codedeploy.amazonaws.com"
    }
    assert "ManagedPolicyArns" not in role  # AWS's policy allows every alias and alarm ("*")
    [policy] = [
        p["Properties"]
        for p in resources(synth, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetProvisionedConcurrencyConfig",
        "cloudwatch:DescribeAlarms",
    }
    assert "*" not in str([s["Resource"] for s in statements])
