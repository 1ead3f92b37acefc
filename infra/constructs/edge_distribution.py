"""The CloudFront distribution that serves published edge bundles to devices (modelfn:edge-distribution).

Its one origin is the artifact bucket's `edge/` folder, read through an Origin Access Control, so
`https://<domain>/<model>/<version>/<file>` is `s3://<bucket>/edge/<model>/<version>/<file>`
(`edge/publish.py` writes those keys, `modelfn.artifact.edge_prefix` names them). Anyone who has
the URL can download a bundle: that is what the distribution is for, so turn it on only for
deployments whose bundles may be public. CloudFront can read nothing outside `edge/`, so the
model artifacts the functions load stay private.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Aws, RemovalPolicy, Validations
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.artifact_bucket import ArtifactBucket
from modelfn.artifact import EDGE_PREFIX

CLOUDFRONT = iam.ServicePrincipal("cloudfront.amazonaws.com")


class EdgeDistribution(Construct):
    """CloudFront in front of `edge/` in the artifact bucket: GET/HEAD over HTTPS, cached long.

    `.url` (`https://<domain>`) plus `/<model>/<version>/bundle.json` is what a device fetches
    first; the record names the bundle file and its sha256 (docs/edge.md).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, artifacts: ArtifactBucket, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_bucket = s3.Bucket(
            self,
            "Logs",
            # SSE-S3: CloudFront standard logs cannot be delivered to an SSE-KMS bucket without
            # opening the key to the log-delivery account; the logs hold request lines, not models.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            # Blocks public ACLs and policies only; the awslogsdelivery grant CloudFront adds to
            # the bucket ACL names one account, so it is not public and still goes through.
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # Standard (legacy) logging writes through the bucket ACL, so ACLs must stay enabled
            # (not BUCKET_OWNER_ENFORCED, hence not the artifact bucket's access-log bucket);
            # BUCKET_OWNER_PREFERRED makes this account own the log files it receives.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            # Without retain, emptied and deleted with the stack, as ArtifactBucket does (a
            # bucket that holds objects is one CloudFormation cannot delete).
            removal_policy=RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
        )
        Validations.of(self.log_bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason=(
                    "This is the CloudFront access-log bucket itself; logging its own writes "
                    "would only log the log deliveries. It is private, SSE-S3, TLS-only."
                ),
            )
        )
        # OAC passed to with_bucket_defaults rather than with_origin_access_control: the latter
        # lets CloudFront read `<bucket>/*` (every model's weights, not just edge/) and, with a
        # KMS bucket, adds its own key statement; the two statements below replace both.
        origin_access_control = cloudfront.S3OriginAccessControl(
            self, "OriginAccessControl", signing=cloudfront.Signing.SIGV4_ALWAYS
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="modelfn edge bundles",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_bucket_defaults(
                    artifacts.bucket,
                    origin_path=f"/{EDGE_PREFIX}",
                    origin_access_control_id=origin_access_control.origin_access_control_id,
                ),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cached_methods=cloudfront.CachedMethods.CACHE_GET_HEAD,
                # A published bundle never changes (publish refuses to overwrite), so up to a
                # year at the edge is safe; a missing key answers 403 (no s3:ListBucket), and
                # CloudFront caches that error for 10 s by default, so a new version shows up
                # within seconds.
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                # Off: the bundle is gzip already and bundle.json is under CloudFront's 1,000-byte
                # minimum, so there is nothing to gain; the device checks the sha256 of the exact
                # bytes published, and serving them unchanged keeps that check simple.
                compress=False,
            ),
            # Standard logging, not v2 (CloudWatch Logs delivery): cdk-nag's CFR3 recognises
            # only DistributionConfig.Logging.
            enable_logging=True,
            log_bucket=self.log_bucket,
            log_file_prefix="cloudfront/",
        )
        self._let_cloudfront_read_edge(artifacts)
        self._acknowledge_checks()

    @property
    def url(self) -> str:
        """`https://<domain>` (a deploy-time token); a bundle is at `<url>/<model>/<version>/`."""
        return f"https://{self.distribution.distribution_domain_name}"

    def _let_cloudfront_read_edge(self, artifacts: ArtifactBucket) -> None:
        """s3:GetObject on `edge/*` for this distribution only, and kms:Decrypt if KMS-encrypted.

        Written out because `bucket.grant_read` would add s3:List* and s3:GetBucket* on the whole
        bucket; the AWS:SourceArn condition keeps every other distribution out.
        """
        artifacts.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[CLOUDFRONT],
                actions=["s3:GetObject"],
                resources=[artifacts.bucket.arn_for_objects(f"{EDGE_PREFIX}/*")],
                conditions={"StringEquals": {"AWS:SourceArn": self.distribution.distribution_arn}},
            )
        )
        key = artifacts.bucket.encryption_key
        if key is None:
            return
        # The key policy cannot name this distribution: the key is created before the bucket,
        # the bucket before the distribution, so referring to the distribution from the key is a
        # circular dependency CloudFormation rejects. It names any distribution of this account
        # instead; what CloudFront may decrypt is still bounded by the bucket policy above (this
        # distribution, edge/* only), which S3 checks before it asks KMS for anything.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[CLOUDFRONT],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "AWS:SourceArn": (
                            f"arn:{Aws.PARTITION}:cloudfront::{Aws.ACCOUNT_ID}:distribution/*"
                        )
                    }
                },
            )
        )

    def _acknowledge_checks(self) -> None:
        """The cdk-nag findings this distribution raises by design, each with why it is safe."""
        Validations.of(self.distribution).acknowledge(
            Acknowledgment(
                id="AwsSolutions-CFR1",
                reason=(
                    "Devices that run edge bundles may be anywhere; the distribution serves only "
                    "edge/ (model bundles meant for download), so there is no region whose "
                    "viewers must be kept out. Add a geo restriction if a licence requires one."
                ),
            ),
            Acknowledgment(
                id="AwsSolutions-CFR2",
                reason=(
                    "The distribution serves immutable files by GET/HEAD only: no query strings "
                    "or cookies reach the origin (CACHING_OPTIMIZED, no origin request policy) "
                    "and nothing is written, so WAF's injection rules have nothing to inspect. "
                    "Floods meet CloudFront's built-in Shield Standard and the cache; if "
                    "repeated downloads ever cost too much, a rate-based rule in a us-east-1 "
                    "web ACL is the fix."
                ),
            ),
            Acknowledgment(
                id="AwsSolutions-CFR4",
                reason=(
                    "Edge bundles are public by design: anyone with the URL may download them, "
                    "which is what a distribution for devices is for; model artifacts outside "
                    "edge/ are not reachable through it. With the default *.cloudfront.net "
                    "certificate CloudFront cannot enforce a TLS minimum; that needs a custom "
                    "domain with an ACM certificate in us-east-1, which this deployment does "
                    "not have. Clients choose: Python's default SSL context (3.10+) refuses "
                    "anything below TLS 1.2. A device checks the bundle against the sha256 in "
                    "bundle.json and its members against SHA256SUMS before it runs anything."
                ),
            ),
        )
