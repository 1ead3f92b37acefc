"""Monitoring and stack outputs: alarms per function and for the API, the topic, the dashboard.

Two stacks: the real models.toml with cdk.json's settings (no alarm email), and a two-model
registry with different timeouts and `modelfn:alarm-email` set.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.monitoring import (
    API_5XX_RATE_THRESHOLD,
    DURATION_TIMEOUT_FRACTION,
    ERRORS_THRESHOLD,
    PREDICT_ROUTE,
    THROTTLES_THRESHOLD,
)
from infra.stacks.modelfn_stack import model_construct_id
from modelfn.registry import REPO_ROOT, Registry, load_registry
from tests.infra.conftest import Synthesized, registry_from, synthesize
from tests.infra.test_modelfn_stack import TWO_MODELS, function_id, logical_id

EMAIL = "oncall@example.com"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(REPO_ROOT / "models.toml")


@pytest.fixture(scope="module")
def synth(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def two_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return registry_from(TWO_MODELS, tmp_path_factory.mktemp("registry"))


@pytest.fixture(scope="module")
def synth_two(two_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(two_registry, tmp_path_factory.mktemp("cdk.out"), **{"alarm-email": EMAIL})


@pytest.fixture(params=["synth", "synth_two"])
def any_synth(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized


# --- helpers ---------------------------------------------------------------------------------


def function_alarms(synth: Synthesized, model: str) -> dict[str, dict[str, Any]]:
    """The model function's alarms by metric name (Errors, Throttles, Duration)."""
    ref = {"Ref": function_id(synth, model)}
    found = {}
    for alarm in synth.resources("AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props.get("Namespace") == "AWS/Lambda" and props["Dimensions"] == [
            {"Name": "FunctionName", "Value": ref}
        ]:
            found[props["MetricName"]] = props
    return found


def dashboard_body(synth: Synthesized) -> dict[str, Any]:
    """The dashboard JSON, with every deploy-time token (a function name, the region) as 'TOKEN'."""
    (dashboard,) = synth.resources("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = "".join(part if isinstance(part, str) else "TOKEN" for part in parts)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def dashboard_metrics(synth: Synthesized) -> list[list[Any]]:
    return [
        metric
        for widget in dashboard_body(synth)["widgets"]
        for metric in widget["properties"].get("metrics", [])
    ]


# --- alarms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "registry_of"), [("synth", "registry"), ("synth_two", "two_registry")]
)
def test_each_function_has_errors_throttles_and_duration_alarms(
    which: str, registry_of: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(which)
    registry: Registry = request.getfixturevalue(registry_of)
    for name in registry.names():
        alarms = function_alarms(synthesized, name)
        assert set(alarms) == {"Errors", "Throttles", "Duration"}, name
        assert alarms["Errors"]["Statistic"] == "Sum"
        assert alarms["Errors"]["Threshold"] == ERRORS_THRESHOLD
        assert alarms["Throttles"]["Threshold"] == THROTTLES_THRESHOLD
        duration = alarms["Duration"]
        assert duration["ExtendedStatistic"] == "p99"
        timeout_ms = registry.get(name).serving.timeout_s * 1000
        assert duration["Threshold"] == pytest.approx(DURATION_TIMEOUT_FRACTION * timeout_ms)
        assert duration["ComparisonOperator"] == "GreaterThanThreshold"
        for alarm in alarms.values():
            assert alarm["TreatMissingData"] == "notBreaching"


def test_duration_threshold_follows_each_models_timeout(synth_two: Synthesized) -> None:
    # zeta-net has timeout_s = 29; alpha-net the registry default: two different thresholds.
    zeta = function_alarms(synth_two, "zeta-net")["Duration"]["Threshold"]
    alpha = function_alarms(synth_two, "alpha-net")["Duration"]["Threshold"]
    assert zeta == pytest.approx(DURATION_TIMEOUT_FRACTION * 29_000)
    assert zeta != alpha


def test_api_5xx_rate_alarm(any_synth: Synthesized) -> None:
    api_ref = {"Ref": logical_id(any_synth.stack.api.http_api)}
    (alarm,) = [
        a["Properties"]
        for alarm_id, a in any_synth.resources("AWS::CloudWatch::Alarm").items()
        if "Metrics" in a["Properties"] and alarm_id.startswith("Monitoring")
    ]  # the code deploys' error alarms are metric math too (test_code_deploy.py)
    assert alarm["Threshold"] == API_5XX_RATE_THRESHOLD
    stats = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]
        for m in alarm["Metrics"]
        if "MetricStat" in m
    }
    assert set(stats) == {"5xx", "Count"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/ApiGateway"
        assert stat["Metric"]["Dimensions"] == [{"Name": "ApiId", "Value": api_ref}]
    (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
    assert "100 * errors / requests" in expression["Expression"]
    assert expression["ReturnData"] is True


def test_every_alarm_notifies_the_alarm_topic(any_synth: Synthesized) -> None:
    topic_ref = {"Ref": logical_id(any_synth.stack.monitoring.topic)}
    alarms = any_synth.resources("AWS::CloudWatch::Alarm")
    # Three per function and the API's here, and each function's two deploy alarms
    # (infra/constructs/code_deploy.py).
    assert len(alarms) == (3 + 2) * len(any_synth.stack.functions) + 1
    for alarm_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [topic_ref], alarm_id
        assert alarm["Properties"]["OKActions"] == [topic_ref], alarm_id


def test_alarm_topic_is_encrypted_tls_only_and_cloudwatch_may_use_its_key(
    any_synth: Synthesized,
) -> None:
    monitoring = any_synth.stack.monitoring
    (topic,) = any_synth.resources("AWS::SNS::Topic").values()
    key_id = logical_id(monitoring.topic_key)
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    (policy,) = any_synth.resources("AWS::SNS::TopicPolicy").values()
    denies = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
    ]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    key = any_synth.resources("AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    cloudwatch = [
        s
        for s in key["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}


def test_cloudwatch_may_publish_to_the_topic_only_for_this_accounts_alarms(
    any_synth: Synthesized,
) -> None:
    # A topic policy replaces SNS's default one: with only the TLS deny, every alarm action
    # fails with "not authorized to perform: SNS:Publish".
    (topic_id,) = any_synth.resources("AWS::SNS::Topic")
    (policy,) = any_synth.resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {s["Effect"] for s in statements} == {"Allow", "Deny"}
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == {"Ref": topic_id}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    source_arn = json.dumps(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:" in source_arn and ":alarm:*" in source_arn
    for pseudo in ("AWS::Partition", "AWS::Region", "AWS::AccountId"):
        assert pseudo in source_arn
    # Still TLS only, for every principal, CloudWatch included.
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Principal"] in ("*", {"AWS": "*"}) and deny["Action"] == "sns:Publish"


def test_email_subscription_only_with_the_context_key(
    synth: Synthesized, synth_two: Synthesized
) -> None:
    assert synth.resources("AWS::SNS::Subscription") == {}
    (subscription,) = synth_two.resources("AWS::SNS::Subscription").values()
    props = subscription["Properties"]
    assert props["Protocol"] == "email"
    assert props["Endpoint"] == EMAIL
    assert props["TopicArn"] == {"Ref": logical_id(synth_two.stack.monitoring.topic)}


# --- dashboard -------------------------------------------------------------------------------


def test_dashboard_is_named_for_the_stack(any_synth: Synthesized) -> None:
    (dashboard,) = any_synth.resources("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == any_synth.stack.stack_name


def dimensions(metric: list[Any]) -> dict[str, Any]:
    """A dashboard metric's dimensions: ['ns', 'name', 'k1', 'v1', ..., {options}] -> {k: v}."""
    pairs = metric[2:-1]
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


def test_dashboard_plots_the_emf_metrics_per_model(any_synth: Synthesized) -> None:
    metrics = [m for m in dashboard_metrics(any_synth) if isinstance(m[0], str)]
    for name in any_synth.stack.functions:
        dims = {"service": f"modelfn-{name}", "model": name}
        latency = [
            m[-1]["stat"]
            for m in metrics
            if m[:2] == ["modelfn", "Latency"] and dimensions(m) == {**dims, "route": PREDICT_ROUTE}
        ]
        assert sorted(latency) == ["p50", "p99"], name
        assert any(m[:2] == ["modelfn", "ModelLoadTime"] and dimensions(m) == dims for m in metrics)
    metrics = dashboard_metrics(any_synth)
    searches = [m[0]["expression"] for m in metrics if isinstance(m[0], dict)]
    for metric_name, dims_schema in [
        ("Errors", "{modelfn,service,model,status_code,error_type}"),
        ("ColdStart", "{modelfn,service,model,route}"),
    ]:
        assert any(dims_schema in s and f'MetricName="{metric_name}"' in s for s in searches)


def test_dashboard_plots_each_functions_lambda_metrics(any_synth: Synthesized) -> None:
    metrics = dashboard_metrics(any_synth)
    # The function name is a deploy-time token, so count: one of each per function.
    for metric_name in ("Invocations", "Errors", "Throttles", "Duration"):
        count = sum(1 for m in metrics if m[:2] == ["AWS/Lambda", metric_name])
        assert count == len(any_synth.stack.functions), metric_name


# --- outputs ---------------------------------------------------------------------------------


def test_outputs_name_the_api_routes_buckets_and_dashboard(synth_two: Synthesized) -> None:
    outputs = synth_two.template.find_outputs("*")
    api_url = {"Fn::GetAtt": [logical_id(synth_two.stack.api.http_api), "ApiEndpoint"]}
    assert outputs["ApiUrl"]["Value"] == api_url
    for name in synth_two.stack.functions:
        for label, path in [
            ("Predict", f"/models/{name}/predict"),
            ("Infer", f"/v2/models/{name}/infer"),
        ]:
            value = outputs[f"{model_construct_id(name)}{label}Url"]["Value"]
            assert value == {"Fn::Join": ["", [api_url, path]]}, (name, label)
    bucket = synth_two.stack.artifacts.bucket
    assert outputs["ArtifactBucketName"]["Value"] == {"Ref": logical_id(bucket)}
    log_bucket = synth_two.stack.artifacts.access_log_bucket
    assert log_bucket is not None
    assert outputs["AccessLogBucketName"]["Value"] == {"Ref": logical_id(log_bucket)}
    dashboard_url = json.dumps(outputs["DashboardUrl"]["Value"])
    assert "console.aws.amazon.com/cloudwatch" in dashboard_url
    dashboard_ref = json.dumps({"Ref": logical_id(synth_two.stack.monitoring.dashboard)})
    assert f'"#dashboards:name=", {dashboard_ref}' in dashboard_url
    topic = {"Ref": logical_id(synth_two.stack.monitoring.topic)}
    assert outputs["AlarmTopicArn"]["Value"] == topic
