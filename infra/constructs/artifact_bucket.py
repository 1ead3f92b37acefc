"""The S3 bucket that holds published model versions (`<model>/<version>/...`, `<model>/aliases/`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

Encryption = Literal["s3-managed", "kms"]

# Versioning exists to undo a bad alias write (`modelfn alias ...`); a replaced version older than
# this is past the point anyone rolls back to, but it still costs storage (a model is MBs).
NONCURRENT_VERSION_DAYS = 90
# ...and the newest few replaced versions stay whatever their age.
NONCURRENT_VERSIONS_KEPT = 3
# An upload `modelfn train --publish` abandoned mid-way: its parts are billed until aborted.
INCOMPLETE_UPLOAD_DAYS = 7


class ArtifactBucket(Construct):
    """A private, versioned, encrypted, TLS-only bucket.

    Versioning keeps every overwritten alias file, so a bad `modelfn alias MODEL VERSION --alias
    NAME --store URI` can be undone from the console. With `retain` (staging, prod) `cdk destroy`
    never deletes trained models; without it (dev) the stack empties and deletes its buckets, so
    a dev stage leaves nothing behind. Lifecycle rules expire old replaced versions and
    abandoned multipart uploads.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption: Encryption = "s3-managed",
        access_logs: bool = False,
        retain: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        # Without retain, CDK's auto-delete custom resource empties a bucket before CloudFormation
        # deletes it (CloudFormation cannot delete a bucket that holds objects).
        removal_policy = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
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
                removal_policy=removal_policy,
                auto_delete_objects=not retain,
            )
            Validations.of(self.access_log_bucket).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-S1",
                    reason=(
                        "This is the access-log bucket itself: S3 writes the artifact bucket's "
                        "server access logs here, and logging it to itself or a third bucket "
                        "would only log the log deliveries. It is private, TLS-only, retained."
                    ),
                )
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
            removal_policy=removal_policy,
            auto_delete_objects=not retain,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="artifacts/" if access_logs else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-replaced-versions",
                    noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                    noncurrent_versions_to_retain=NONCURRENT_VERSIONS_KEPT,
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
                ),
            ],
        )

    @property
    def store_uri(self) -> str:
        """The store URI (a deploy-time token) that the functions read and `modelfn train MODEL
        --publish STORE_URI` and `modelfn alias ... --store STORE_URI` write."""
        return f"s3://{self.bucket.bucket_name}"

    def grant_read_model(self, grantee: iam.IGrantable, model: str) -> None:
        """Let `grantee` read `<model>/...` and nothing else: no other model, no write, no delete.

        Written out instead of `bucket.grant_read(grantee, f"{model}/*")`, which also allows
        `s3:List*` on the whole bucket (every model's key names). S3 answers a GET of a missing
        key with 404 only to a caller that may list it, so ListBucket stays, limited by the
        `s3:prefix` condition to this model's keys; without it a missing alias reads as 403.
        (Whether S3 honours the conditioned grant for that 404 is to be confirmed on a live
        account: docs/deploy.md, "The artifact bucket".)
        """
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{model}/*")],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{model}/*"]}},
            )
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant_decrypt(grantee)

    def grant_write_aliases(self, grantee: iam.IGrantable, model: str) -> None:
        """Let `grantee` move `model`'s aliases (`<model>/aliases/*`, a compare-and-swap PUT) and
        write nothing else: no version's files, no other model, no delete."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{model}/aliases/*")],
            )
        )
        if self.bucket.encryption_key is not None:
            # A one-part PUT under SSE-KMS: a data key to encrypt it with, named (no wildcard).
            self.bucket.encryption_key.grant(grantee, "kms:GenerateDataKey")

    def grant_deliver(self, grantee: iam.IGrantable, prefixes: Sequence[str]) -> None:
        """Let a delivery service's role (Firehose) add objects under `prefixes` (`capture`, ...)
        and do nothing else: no read, no list, no delete, no other prefix.

        Firehose writes large objects in parts, so it may abort an upload it gave up on, and under
        SSE-KMS a part needs kms:Decrypt besides kms:GenerateDataKey (S3 decrypts the upload's
        data key for each part). s3:GetBucketLocation tells it the bucket's region, nothing else.
        """
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects(f"{prefix}/*") for prefix in prefixes],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation"], resources=[self.bucket.bucket_arn]
            )
        )
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant(grantee, "kms:GenerateDataKey", "kms:Decrypt")
