"""The S3 bucket that holds published model versions (`<model>/<version>/...`, `<model>/aliases/`)."""

from __future__ import annotations

from typing import Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

Encryption = Literal["s3-managed", "kms"]


class ArtifactBucket(Construct):
    """A private, versioned, encrypted, TLS-only bucket that outlives the stack.

    Versioning keeps every overwritten alias file, so a bad `modelfn alias MODEL VERSION --alias
    NAME --store URI` can be undone from the console; RETAIN means `cdk destroy` never deletes
    trained models.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption: Encryption = "s3-managed",
        access_logs: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_log_bucket: s3.Bucket | None = None
        if access_logs:
            # S3 delivers server access logs only to SSE-S3 buckets, whatever the data bucket uses.
            self.access_log_bucket = s3.Bucket(
                self,
                "AccessLogs",
                encryption=s3.BucketEncryption.S3_MANAGED,
                enforce_ssl=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                removal_policy=RemovalPolicy.RETAIN,
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=(
                s3.BucketEncryption.KMS if encryption == "kms" else s3.BucketEncryption.S3_MANAGED
            ),
            # With KMS, an S3 Bucket Key cuts KMS requests (and their cost) per object read.
            bucket_key_enabled=encryption == "kms",
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="artifacts/" if access_logs else None,
        )

    @property
    def store_uri(self) -> str:
        """The store URI (a deploy-time token) that the functions read and `modelfn train MODEL
        --publish STORE_URI` and `modelfn alias ... --store STORE_URI` write."""
        return f"s3://{self.bucket.bucket_name}"
