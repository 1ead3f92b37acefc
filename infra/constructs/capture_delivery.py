"""Captured requests to S3 (issue 23 item 4): one Amazon Data Firehose stream per stage.

A capturing model's function writes each sampled request as one JSON log line whose `message` is
"capture" (modelfn/capture.py). A subscription filter on that function's log group sends those
lines, and no other, to the stage's stream; the stream unpacks CloudWatch Logs' batches and writes
one JSON object per line to `capture/<model>/<version>/YYYY/MM/DD/` in the artifact bucket, where
`modelfn drift` reads them (`read_captured`).

How a batch becomes lines: CloudWatch Logs sends gzip-compressed batches of log events, wrapped in
an envelope (owner, log group, `logEvents`). Firehose's own processors undo that, with no Lambda
of ours: Decompression (GZIP), CloudWatchLogProcessing with DataMessageExtraction (only each
event's `message`, our JSON line), MetadataExtraction (a JQ query reads each record's model and
version: the partition keys of the key layout), AppendDelimiterToRecord (a newline after each).

The day in the key is the day Firehose received the record (UTC), which can be the day after the
record's own `time` near midnight: `read_captured` takes the day as a lower bound and filters by
`time`, so such a record is still read.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Acknowledgment, Aws, Duration, RemovalPolicy, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct, IConstruct

from infra.constructs.artifact_bucket import ArtifactBucket
from infra.constructs.model_function import ModelFunction, _logical_id
from modelfn.capture import CAPTURE_MESSAGE, CAPTURE_PREFIX
from modelfn.registry import ModelEntry

# The log lines the subscription filter sends: capture records only, never request lines.
FILTER_PATTERN = f'{{ $.message = "{CAPTURE_MESSAGE}" }}'
# Dynamic partitioning by the record's own fields: the keys `capture_key` names.
PARTITION_QUERY = "{model: .model, version: .version}"
DATA_PREFIX = (
    f"{CAPTURE_PREFIX}/!{{partitionKeyFromQuery:model}}/!{{partitionKeyFromQuery:version}}/"
    "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"
)
# Records Firehose could not decompress, partition or write: outside `capture/`, so drift never
# reads them, and by failure kind (decompression-failed, ...) and day.
ERRORS_PREFIX = "capture-errors"
ERROR_OUTPUT_PREFIX = (
    f"{ERRORS_PREFIX}/!{{firehose:error-output-type}}/"
    "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/"
)
# Dynamic partitioning needs a buffer of at least 64 MB; a capture stream fills it only at high
# traffic, so the interval decides: an object per model version per 15 minutes (the maximum, and
# 3x fewer objects, S3 PUTs and drift GETs than the 5-minute default). Drift looks at days.
BUFFER_MB = 64
BUFFER_SECONDS = 900
# Delivered objects are gzip-compressed (`read_captured` reads either): features are repetitive
# JSON, so storage and drift's downloads shrink several-fold.
FILE_EXTENSION = ".jsonl.gz"


class CaptureSettingError(ValueError):
    """A model's capture asks for protection the stage does not give; the message names the model,
    the stage's setting and what to change."""


def refuse_unprotected_raw(
    entries: Sequence[ModelEntry], *, stage: str, bucket_encryption: str, log_encryption: str
) -> None:
    """Raise CaptureSettingError where a capturing model records raw inputs (`raw = true`) on a
    stage whose artifact bucket or log groups are not under a customer KMS key.

    A raw record holds the request's texts or pixels, in the function's log group and then in the
    bucket: both must be under a key whose use is controlled and logged (CloudTrail).
    """
    unmet = [
        f'modelfn:{key} is "{value}"'
        for key, value in (
            ("bucket-encryption", bucket_encryption),
            ("log-encryption", log_encryption),
        )
        if value != "kms"
    ]
    raw = sorted(e.name for e in entries if e.capture.enabled and e.capture.raw)
    if raw and unmet:
        raise CaptureSettingError(
            f"stage {stage}: models.toml [models.{raw[0]}.capture] sets raw = true, which writes "
            "each sampled request's inputs to the function's log group and the artifact bucket, "
            f"but {' and '.join(unmet)}; set modelfn:bucket-encryption and modelfn:log-encryption "
            f'to "kms" for stage {stage} in cdk.json, or set raw = false'
            + (f" (raw is also set for {', '.join(raw[1:])})" if raw[1:] else "")
        )


class CaptureDelivery(Construct):
    """The stage's capture stream, fed by each of `functions`' log groups.

    The stream is encrypted at rest with `log_key` where the stage has one (the same key as the
    log groups the records come from), with an AWS-owned key otherwise; delivered objects take the
    bucket's own encryption.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        functions: Sequence[ModelFunction],
        artifacts: ArtifactBucket,
        log_retention: logs.RetentionDays,
        retain: bool,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        removal_policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # Firehose's own delivery errors (a denied PUT, a failed partition), as the stage logs.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=log_retention,
            encryption_key=log_key,
            removal_policy=removal_policy,
        )
        errors_stream = self.log_group.add_stream("DestinationDelivery")
        errors_stream.apply_removal_policy(removal_policy)
        # The external id is the account, as the Firehose guide's trust policy has it: only a
        # stream of this account may act as this role.
        self.delivery_role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}},
            ),
            description="modelfn capture stream: writes capture/ and capture-errors/ only",
        )
        artifacts.grant_deliver(self.delivery_role, [CAPTURE_PREFIX, ERRORS_PREFIX])
        self.log_group.grant_write(self.delivery_role)
        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="CUSTOMER_MANAGED_CMK", key_arn=log_key.key_arn
                )
                if log_key is not None
                else firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="AWS_OWNED_CMK"
                )
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=artifacts.bucket.bucket_arn,
                role_arn=self.delivery_role.role_arn,
                prefix=DATA_PREFIX,
                error_output_prefix=ERROR_OUTPUT_PREFIX,
                compression_format="GZIP",
                file_extension=FILE_EXTENSION,
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    size_in_m_bs=BUFFER_MB, interval_in_seconds=BUFFER_SECONDS
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True, processors=_processors()
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=errors_stream.log_stream_name,
                ),
            ),
        )  # fmt: skip
        # Firehose checks at creation that it can act as the role: its policy comes first (the
        # role itself already does, through the RoleARN).
        self.stream.node.add_dependency(_default_policy(self.delivery_role))
        # CloudWatch Logs puts the filtered batches into the stream as this role; only for log
        # groups of this account and region (the confused-deputy condition the guide gives).
        self.logs_role = iam.Role(
            self,
            "LogsRole",
            assumed_by=iam.ServicePrincipal(
                "logs.amazonaws.com",
                conditions={
                    "StringLike": {
                        "aws:SourceArn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"
                    }
                },
            ),
            description="modelfn capture: CloudWatch Logs puts capture records into the stream",
        )
        iam.Grant.add_to_principal(
            grantee=self.logs_role,
            actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
            resource_arns=[self.stream.attr_arn],
        )
        self.filters: dict[str, logs.CfnSubscriptionFilter] = {}
        for function in functions:
            subscription = logs.CfnSubscriptionFilter(
                self,
                f"{function.node.id}Filter",
                log_group_name=function.log_group.log_group_name,
                filter_pattern=FILTER_PATTERN,
                destination_arn=self.stream.attr_arn,
                role_arn=self.logs_role.role_arn,
            )
            # CloudWatch Logs checks that it may put into the stream when the filter is created:
            # the role's grant comes first.
            subscription.node.add_dependency(_default_policy(self.logs_role))
            self.filters[function.model_name] = subscription
        self._acknowledge_checks(artifacts)

    def alarm_on_failed_deliveries(self, topic: sns.ITopic) -> cloudwatch.Alarm:
        """An alarm to `topic` (the stage's alarm topic) when an S3 delivery of the stream fails:
        Firehose's `DeliveryToS3.Success` is the share of its PUTs that succeeded, so a minimum
        under 1 within a buffer interval means records are waiting in its retries, or, after
        them, in `capture-errors/`. No capture traffic is no failure."""
        alarm = cloudwatch.Alarm(
            self,
            "DeliveryFailures",
            alarm_description=(
                "modelfn capture: a Firehose delivery to capture/ failed; see the stream's error "
                "log group and capture-errors/ in the artifact bucket"
            ),
            metric=cloudwatch.Metric(
                namespace="AWS/Firehose",
                metric_name="DeliveryToS3.Success",
                dimensions_map={"DeliveryStreamName": self.stream.ref},
                statistic="Minimum",
                period=Duration.seconds(BUFFER_SECONDS),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        action = cw_actions.SnsAction(topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)  # the all-clear goes to the same readers, as every alarm's
        return alarm

    def _acknowledge_checks(self, artifacts: ArtifactBucket) -> None:
        """The cdk-nag findings the capture stream raises by design, each with why it is safe."""
        bucket_arn = f"<{_logical_id(artifacts.bucket)}.Arn>"
        reasons = {
            CAPTURE_PREFIX: (
                "s3:PutObject and s3:AbortMultipartUpload on capture/* only: Firehose names each "
                "object by model, version, day and a random suffix at delivery time; no read, no "
                "delete, no model artifact."
            ),
            ERRORS_PREFIX: (
                "s3:PutObject and s3:AbortMultipartUpload on capture-errors/* only: records "
                "Firehose failed to process, under names it picks at delivery time; no read."
            ),
        }
        Validations.of(self).acknowledge(
            *(
                Acknowledgment(id=f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}/*]", reason=r)
                for prefix, r in reasons.items()
            )
        )


def _default_policy(role: iam.Role) -> IConstruct:
    """The policy `grant_*` calls wrote `role`'s permissions into."""
    return role.node.find_child("DefaultPolicy")


def _processors() -> list[firehose.CfnDeliveryStream.ProcessorProperty]:
    """CloudWatch Logs' gzipped batches -> one capture record per line, with its partition keys.

    The types and parameter names are Firehose's (API reference, `Processor`), as aws-cdk-lib's
    DecompressionProcessor, CloudWatchLogProcessor, MetadataExtractionProcessor and
    AppendDelimiterToRecordProcessor render them (written out here because the L2 S3 destination
    grants its role read and write on the whole bucket); listed in the order they apply.
    """
    p = firehose.CfnDeliveryStream.ProcessorProperty
    param = firehose.CfnDeliveryStream.ProcessorParameterProperty
    return [
        p(type="Decompression", parameters=[param(parameter_name="CompressionFormat", parameter_value="GZIP")]),
        p(type="CloudWatchLogProcessing", parameters=[param(parameter_name="DataMessageExtraction", parameter_value="true")]),
        p(
            type="MetadataExtraction",
            parameters=[
                param(parameter_name="MetadataExtractionQuery", parameter_value=PARTITION_QUERY),
                param(parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"),
            ],
        ),
        p(type="AppendDelimiterToRecord"),
    ]  # fmt: skip
