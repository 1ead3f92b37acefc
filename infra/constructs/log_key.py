"""The customer key a stage's log groups are encrypted with, where `log-encryption = "kms"`.

CloudWatch Logs encrypts every log group at rest with a key it manages; a customer key adds
who-may-decrypt control and CloudTrail records of each use, at $1 a month and a KMS call per
batch of log events. CloudWatch Logs uses the key only through its key policy: the service
principal of the stack's region, and only for this account's log groups (the encryption
context names the log group).
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


def log_key(scope: Construct, construct_id: str, *, retain: bool) -> kms.Key:
    """A rotating key that CloudWatch Logs may use for this account's log groups in this region.

    A retained log group keeps its key: logs encrypted with a deleted key cannot be read again.
    """
    key = kms.Key(
        scope,
        construct_id,
        description="modelfn log group encryption",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AllowThisAccountsLogGroups",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=[
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    )
                }
            },
        )
    )
    return key
