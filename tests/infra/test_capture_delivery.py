"""Captured requests to S3 (issue 23 item 4), by synthesis: each capturing function's log group
feeds one Firehose stream per stage through a `capture` subscription filter; the stream unpacks
CloudWatch Logs' batches and writes `capture/<model>/<version>/YYYY/MM/DD/` with roles that may do
only that; a raw capture is refused where the bucket or the logs are not under KMS.

Nothing here ran on AWS: these are the template's properties, not a delivery."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.constructs.capture_delivery import (
    CaptureSettingError,
    refuse_unprotected_raw,
)
from infra.stacks.modelfn_stack import ModelfnStack
from modelfn.capture import RAW_ENV, SAMPLE_RATE_ENV, CaptureRecord, capture_key
from modelfn.registry import REPO_ROOT, Registry, load_registry
from tests.infra.conftest import (
    Synthesized,
    registry_from,
    settings_for,
    stage_context,
    synthesize,
)
from tests.infra.test_modelfn_stack import as_list, function_id, logical_id

# One model records a quarter of its requests with their raw inputs; the other records nothing.
CAPTURED = """
[models.seen-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
capture = { sample_rate = 0.25, raw = RAW }

[models.unseen-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
"""
KMS = {"bucket-encryption": "kms", "log-encryption": "kms"}
VERSION = "20260304T120000Z-0123abcd"  # a version id as `modelfn train --publish` names one


def captured_registry(folder: Path, *, raw: bool) -> Registry:
    return registry_from(CAPTURED.replace("RAW", json.dumps(raw)), folder)


@pytest.fixture(scope="module")
def kms_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Raw capture on a stage whose bucket and logs are under KMS (allowed)."""
    registry = captured_registry(tmp_path_factory.mktemp("registry"), raw=True)
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), "staging", **KMS)


@pytest.fixture(scope="module")
def dev_synth(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Feature-only capture on dev as cdk.json has it: SSE-S3 bucket, CloudWatch's log key."""
    registry = captured_registry(tmp_path_factory.mktemp("registry"), raw=False)
    return synthesize(registry, tmp_path_factory.mktemp("cdk.out"), "dev")


@pytest.fixture(params=["kms", "dev"])
def synth(request: pytest.FixtureRequest) -> Synthesized:
    fixture = "kms_synth" if request.param == "kms" else "dev_synth"
    synthesized: Synthesized = request.getfixturevalue(fixture)
    return synthesized


def stream(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    [(logical, resource)] = synth.resources("AWS::KinesisFirehose::DeliveryStream").items()
    return logical, resource["Properties"]


def destination(synth: Synthesized) -> dict[str, Any]:
    config: dict[str, Any] = stream(synth)[1]["ExtendedS3DestinationConfiguration"]
    return config


def policy_statements(synth: Synthesized, role: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def trust(synth: Synthesized, role: str) -> dict[str, Any]:
    [statement] = synth.resources("AWS::IAM::Role")[role]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    return statement  # type: ignore[no-any-return]


def object_keys(resource: Any) -> str:
    """`<bucket ARN>/capture/*` as the template joins it -> '/capture/*'."""
    parts = resource["Fn::Join"][1]
    assert parts[0] == {"Fn::GetAtt": [parts[0]["Fn::GetAtt"][0], "Arn"]}
    return str(parts[1])


# --- the key layout -------------------------------------------------------------------------


def test_the_stream_writes_capture_keys_by_model_version_and_day(synth: Synthesized) -> None:
    config = destination(synth)
    assert config["Prefix"] == (
        "capture/!{partitionKeyFromQuery:model}/!{partitionKeyFromQuery:version}/"
        "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"
    )
    assert config["BucketARN"] == {"Fn::GetAtt": [logical_id(synth.stack.artifacts.bucket), "Arn"]}
    # The keys `modelfn drift` reads (modelfn/capture.py), once Firehose fills in the prefix.
    when = datetime(2026, 3, 4, 23, 59, tzinfo=UTC)
    filled = (
        config["Prefix"]
        .replace("!{partitionKeyFromQuery:model}", "seen-net")
        .replace("!{partitionKeyFromQuery:version}", VERSION)
        .replace("!{timestamp:yyyy}", "2026")
        .replace("!{timestamp:MM}", "03")
        .replace("!{timestamp:dd}", "04")
    )
    assert filled + "x.jsonl.gz" == capture_key("seen-net", VERSION, when, "x.jsonl.gz")
    assert config["FileExtension"] == ".jsonl.gz" and config["CompressionFormat"] == "GZIP"
    # Failures go outside capture/, so drift never reads one as a record.
    assert config["ErrorOutputPrefix"].startswith("capture-errors/!{firehose:error-output-type}/")
    assert not config["ErrorOutputPrefix"].startswith("capture/")


def test_dynamic_partitioning_is_on_with_a_buffer_it_accepts(synth: Synthesized) -> None:
    config = destination(synth)
    assert config["DynamicPartitioningConfiguration"] == {"Enabled": True}
    hints = config["BufferingHints"]
    assert hints["SizeInMBs"] >= 64  # Firehose's minimum with dynamic partitioning
    assert 60 <= hints["IntervalInSeconds"] <= 900


def test_the_processors_unpack_cloudwatch_batches_into_one_record_a_line(
    synth: Synthesized,
) -> None:
    processing = destination(synth)["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    assert processing["Processors"] == [
        {
            "Type": "Decompression",
            "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}],
        },
        {
            "Type": "CloudWatchLogProcessing",
            "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}],
        },
        {
            "Type": "MetadataExtraction",
            "Parameters": [
                {
                    "ParameterName": "MetadataExtractionQuery",
                    "ParameterValue": "{model: .model, version: .version}",
                },
                {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
            ],
        },
        {"Type": "AppendDelimiterToRecord"},
    ]


def test_the_partition_query_reads_a_capture_records_model_and_version(
    synth: Synthesized,
) -> None:
    """The JQ object `{key: .field, ...}` names every partition key the prefix uses, each from a
    field a CaptureRecord has (jq itself is not run here: the shape is this simple on purpose)."""
    config = destination(synth)
    [query] = [
        p["ParameterValue"]
        for proc in config["ProcessingConfiguration"]["Processors"]
        for p in proc.get("Parameters", [])
        if p["ParameterName"] == "MetadataExtractionQuery"
    ]
    pairs = dict(re.findall(r"(\w+): \.(\w+)", query))
    assert set(pairs) == set(re.findall(r"partitionKeyFromQuery:(\w+)", config["Prefix"]))
    record = CaptureRecord(
        service="modelfn-seen-net", request_id="r1", time=datetime.now(UTC), model="seen-net",
        version=VERSION, route="/models/seen-net/predict", status=200, latency_ms=4.2, features=[{}],
    )  # fmt: skip
    line = json.loads(record.model_dump_json())
    assert {key: line[field] for key, field in pairs.items()} == {
        "model": "seen-net",
        "version": VERSION,
    }


# --- the source: subscription filters -------------------------------------------------------


def test_only_a_capturing_functions_log_group_is_subscribed(synth: Synthesized) -> None:
    stream_id, _ = stream(synth)
    [subscription] = synth.resources("AWS::Logs::SubscriptionFilter").values()
    props = subscription["Properties"]
    assert props["FilterPattern"] == '{ $.message = "capture" }'
    assert props["DestinationArn"] == {"Fn::GetAtt": [stream_id, "Arn"]}
    seen = synth.stack.functions["seen-net"].log_group
    assert props["LogGroupName"] == {"Ref": logical_id(seen)}
    # CloudWatch Logs puts into the stream as the logs role, after its grant exists.
    role = props["RoleArn"]["Fn::GetAtt"][0]
    assert subscription["DependsOn"] == [
        p for p in synth.resources("AWS::IAM::Policy") if p.startswith("CaptureLogsRole")
    ]
    assert trust(synth, role)["Principal"] == {"Service": "logs.amazonaws.com"}
    assert "aws:SourceArn" in trust(synth, role)["Condition"]["StringLike"]


def test_the_logs_role_may_only_put_records_into_the_stream(synth: Synthesized) -> None:
    stream_id, _ = stream(synth)
    [subscription] = synth.resources("AWS::Logs::SubscriptionFilter").values()
    role = subscription["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    assert policy_statements(synth, role) == [
        {
            "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [stream_id, "Arn"]},
        }
    ]


# --- the destination: the Firehose role -----------------------------------------------------


def delivery_role(synth: Synthesized) -> str:
    role: str = destination(synth)["RoleARN"]["Fn::GetAtt"][0]
    return role


def test_the_firehose_role_writes_only_the_capture_prefixes(synth: Synthesized) -> None:
    role = delivery_role(synth)
    found = policy_statements(synth, role)
    actions = [a for s in found for a in as_list(s["Action"])]
    assert not [a for a in actions if "*" in a]  # named actions only
    s3 = [s for s in found if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    writes = [s for s in s3 if "s3:PutObject" in as_list(s["Action"])]
    [write] = writes
    assert sorted(as_list(write["Action"])) == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert sorted(object_keys(r) for r in as_list(write["Resource"])) == [
        "/capture-errors/*",
        "/capture/*",
    ]
    bucket = {"Fn::GetAtt": [logical_id(synth.stack.artifacts.bucket), "Arn"]}
    others = [s for s in s3 if s is not write]
    assert others == [{"Action": "s3:GetBucketLocation", "Effect": "Allow", "Resource": bucket}]
    # Its own error log group, and nothing else of CloudWatch Logs.
    [logs] = [s for s in found if any(a.startswith("logs:") for a in as_list(s["Action"]))]
    assert logs["Resource"] == {"Fn::GetAtt": [logical_id(synth.stack.capture.log_group), "Arn"]}  # type: ignore[union-attr]
    statement = trust(synth, role)
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}


def test_under_a_kms_bucket_the_firehose_role_may_use_that_key_to_write(
    kms_synth: Synthesized, dev_synth: Synthesized
) -> None:
    found = policy_statements(kms_synth, delivery_role(kms_synth))
    [kms] = [s for s in found if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert sorted(as_list(kms["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    key = kms_synth.stack.artifacts.bucket.encryption_key
    assert kms["Resource"] == {"Fn::GetAtt": [logical_id(key), "Arn"]}  # type: ignore[arg-type]
    found = policy_statements(dev_synth, delivery_role(dev_synth))
    assert not [s for s in found if any(a.startswith("kms:") for a in as_list(s["Action"]))]


# --- encryption and error logs --------------------------------------------------------------


def test_the_stream_is_encrypted_with_the_log_key_where_the_stage_has_one(
    kms_synth: Synthesized, dev_synth: Synthesized
) -> None:
    _, props = stream(kms_synth)
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": {"Fn::GetAtt": [logical_id(kms_synth.stack.log_key), "Arn"]},  # type: ignore[arg-type]
    }
    _, props = stream(dev_synth)
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}


def test_firehose_errors_go_to_a_log_group_kept_as_the_stage_keeps_logs(
    synth: Synthesized,
) -> None:
    options = destination(synth)["CloudWatchLoggingOptions"]
    group_id = options["LogGroupName"]["Ref"]
    assert options["Enabled"] is True and "Ref" in options["LogStreamName"]
    group = synth.resources("AWS::Logs::LogGroup")[group_id]
    settings = synth.stack.settings
    assert group["Properties"]["RetentionInDays"] == settings.log_retention_days
    assert group["DeletionPolicy"] == ("Retain" if settings.retain_data else "Delete")
    key = synth.stack.log_key
    if key is None:
        assert "KmsKeyId" not in group["Properties"]
    else:
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [logical_id(key), "Arn"]}


# --- the functions --------------------------------------------------------------------------


def test_a_capturing_function_is_told_its_rate_and_the_other_is_not(
    kms_synth: Synthesized, dev_synth: Synthesized
) -> None:
    functions = kms_synth.resources("AWS::Lambda::Function")
    env = functions[function_id(kms_synth, "seen-net")]["Properties"]["Environment"]["Variables"]
    assert (env[SAMPLE_RATE_ENV], env[RAW_ENV]) == ("0.25", "1")
    env = dev_synth.resources("AWS::Lambda::Function")[function_id(dev_synth, "seen-net")][
        "Properties"
    ]["Environment"]["Variables"]
    assert (env[SAMPLE_RATE_ENV], env[RAW_ENV]) == ("0.25", "0")
    other = functions[function_id(kms_synth, "unseen-net")]["Properties"]["Environment"]
    assert not {SAMPLE_RATE_ENV, RAW_ENV} & set(other["Variables"])


def test_a_registry_that_captures_nothing_deploys_no_stream(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # models.toml captures nothing (the lead's choice): its templates, and snapshots, stay as they were.
    registry = load_registry(REPO_ROOT / "models.toml")
    assert not [n for n in registry.names() if registry.get(n).capture.enabled]
    synth = synthesize(registry, tmp_path_factory.mktemp("cdk.out"), "dev")
    assert synth.stack.capture is None
    assert not synth.resources("AWS::KinesisFirehose::DeliveryStream")
    assert not synth.resources("AWS::Logs::SubscriptionFilter")
    for function in synth.resources("AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert not {SAMPLE_RATE_ENV, RAW_ENV} & set(variables)


# --- raw inputs need KMS --------------------------------------------------------------------


def test_raw_capture_is_refused_on_a_stage_without_kms(tmp_path: Path) -> None:
    registry = captured_registry(tmp_path, raw=True)
    app = cdk.App(context=stage_context("dev") | {"aws:cdk:bundling-stacks": []})
    with pytest.raises(CaptureSettingError) as refused:
        ModelfnStack(app, "Refused", registry=registry, settings=settings_for("dev"))
    message = str(refused.value)
    assert "[models.seen-net.capture] sets raw = true" in message
    assert 'modelfn:bucket-encryption is "s3-managed"' in message
    assert 'modelfn:log-encryption is "cloudwatch"' in message
    assert "set raw = false" in message and "cdk.json" in message


@pytest.mark.parametrize(
    ("bucket", "logs", "unmet"),
    [
        ("kms", "cloudwatch", ["log-encryption"]),
        ("s3-managed", "kms", ["bucket-encryption"]),
    ],
)
def test_raw_capture_needs_both_keys_and_names_the_missing_one(
    tmp_path: Path, bucket: str, logs: str, unmet: list[str]
) -> None:
    registry = captured_registry(tmp_path, raw=True)
    entries = [registry.get(n) for n in registry.names()]
    with pytest.raises(CaptureSettingError) as refused:
        refuse_unprotected_raw(entries, stage="prod", bucket_encryption=bucket, log_encryption=logs)
    named = re.findall(r"modelfn:([a-z-]+) is", str(refused.value))
    assert named == unmet


def test_feature_only_capture_and_raw_under_kms_are_allowed(tmp_path: Path) -> None:
    for raw, bucket, logs in ((True, "kms", "kms"), (False, "s3-managed", "cloudwatch")):
        folder = tmp_path / str(raw)
        folder.mkdir()
        registry = captured_registry(folder, raw=raw)
        entries = [registry.get(n) for n in registry.names()]
        refuse_unprotected_raw(entries, stage="s", bucket_encryption=bucket, log_encryption=logs)


def test_a_failed_delivery_alarms_on_the_stages_topic(synth: Synthesized) -> None:
    logical, _ = stream(synth)
    [alarm] = [
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/Firehose"
    ]
    assert alarm["MetricName"] == "DeliveryToS3.Success"
    assert alarm["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": {"Ref": logical}}]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Minimum", 1)
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # no capture traffic is no failure
    topic = {"Ref": logical_id(synth.stack.monitoring.topic)}
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
