"""The edge distribution: CloudFront over `edge/` in the artifact bucket, and nothing more.

Two stacks, each an ArtifactBucket with access logs plus an EdgeDistribution, synthesized once
under AwsSolutionsChecks: an SSE-S3 bucket with a destroyable log bucket, and a KMS bucket with a
retained one. A cdk-nag finding no acknowledgment covers fails the fixture (NagFindings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.constructs.artifact_bucket import ArtifactBucket, Encryption
from infra.constructs.edge_distribution import EdgeDistribution
from modelfn.stages import cdk_json_context
from tests.infra.test_security_checks import cfn_lint, synth_checked

CLOUDFRONT = {"Service": "cloudfront.amazonaws.com"}


@dataclass
class Edge:
    encryption: Encryption
    retain: bool
    stack: cdk.Stack
    artifacts: ArtifactBucket
    edge: EdgeDistribution
    template: Template
    template_path: Path
    outdir: Path

    def resolve(self, value: Any) -> Any:
        return self.stack.resolve(value)

    def logical_id(self, construct: Any) -> str:
        return str(self.resolve(construct.node.default_child.logical_id))

    def resources(self, kind: str) -> dict[str, Any]:
        return dict(self.template.find_resources(kind))

    def distribution_config(self) -> dict[str, Any]:
        (distribution,) = self.resources("AWS::CloudFront::Distribution").values()
        config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
        return config

    def policy_of(self, bucket: Any) -> list[dict[str, Any]]:
        bucket_id = self.logical_id(bucket)
        (policy,) = [
            p for p in self.resources("AWS::S3::BucketPolicy").values()
            if p["Properties"]["Bucket"] == {"Ref": bucket_id}
        ]  # fmt: skip
        statements: list[dict[str, Any]] = policy["Properties"]["PolicyDocument"]["Statement"]
        return statements


def synth_edge(outdir: Path, encryption: Encryption, retain: bool) -> Edge:
    """One stack under AwsSolutionsChecks, the way infra/app.py adds them."""
    app = cdk.App(context=cdk_json_context(), outdir=str(outdir))
    stack = cdk.Stack(app, "Edge")
    artifacts = ArtifactBucket(stack, "Artifacts", encryption=encryption, access_logs=True)
    edge = EdgeDistribution(stack, "EdgeDistribution", artifacts=artifacts, retain=retain)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    synth_checked(app, outdir)
    template_path = outdir / "Edge.template.json"
    template = Template.from_json(json.loads(template_path.read_text(encoding="utf-8")))
    return Edge(encryption, retain, stack, artifacts, edge, template, template_path, outdir)


@pytest.fixture(
    scope="module", params=[("s3-managed", False), ("kms", True)], ids=["sse-s3", "kms"]
)
def synth(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Edge:
    encryption, retain = request.param
    return synth_edge(tmp_path_factory.mktemp("cdk.out"), encryption, retain)


def cloudfront_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if s.get("Principal") == CLOUDFRONT]


def all_policy_statements(synth: Edge) -> list[dict[str, Any]]:
    """Every statement of every bucket policy, key policy and IAM policy in the template."""
    documents = [
        *(r["Properties"]["PolicyDocument"] for r in synth.resources("AWS::S3::BucketPolicy").values()),
        *(r["Properties"]["KeyPolicy"] for r in synth.resources("AWS::KMS::Key").values()),
        *(r["Properties"]["PolicyDocument"] for r in synth.resources("AWS::IAM::Policy").values()),
    ]  # fmt: skip
    return [statement for document in documents for statement in document["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- the origin and what viewers get ----------------------------------------------------------


def test_the_only_origin_is_the_edge_folder_read_through_oac(synth: Edge) -> None:
    (origin,) = synth.distribution_config()["Origins"]
    assert origin["DomainName"] == synth.resolve(synth.artifacts.bucket.bucket_regional_domain_name)
    assert origin["OriginPath"] == "/edge"
    (oac_id,) = synth.resources("AWS::CloudFront::OriginAccessControl")
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    # An empty OAI is how CloudFormation says "no legacy origin access identity".
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert not synth.resources("AWS::CloudFront::CloudFrontOriginAccessIdentity")
    synth.template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": {
                "OriginAccessControlOriginType": "s3",
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
            }
        },
    )


def test_viewers_get_https_get_and_head_and_a_long_cache(synth: Edge) -> None:
    behavior = synth.distribution_config()["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["AllowedMethods"] == ["GET", "HEAD"]
    assert behavior["CachedMethods"] == ["GET", "HEAD"]
    assert behavior["CachePolicyId"] == cloudfront.CachePolicy.CACHING_OPTIMIZED.cache_policy_id
    assert behavior["Compress"] is False
    assert "CacheBehaviors" not in synth.distribution_config()  # no path reaches another origin


def test_url_is_https_on_the_distribution_domain(synth: Edge) -> None:
    distribution_id = synth.logical_id(synth.edge.distribution)
    assert synth.resolve(synth.edge.url) == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]
    }


# --- what CloudFront may read -------------------------------------------------------------------


def test_cloudfront_may_get_only_edge_objects_and_only_for_this_distribution(synth: Edge) -> None:
    statements = cloudfront_statements(synth.policy_of(synth.artifacts.bucket))
    distribution_id = synth.logical_id(synth.edge.distribution)
    assert statements == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Principal": CLOUDFRONT,
            "Resource": {
                "Fn::Join": ["", [synth.resolve(synth.artifacts.bucket.bucket_arn), "/edge/*"]]
            },
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:", {"Ref": "AWS::Partition"}, ":cloudfront::",
                                {"Ref": "AWS::AccountId"}, ":distribution/",
                                {"Ref": distribution_id},
                            ],
                        ]
                    }
                }
            },
        }
    ]  # fmt: skip


def test_a_kms_bucket_lets_cloudfront_decrypt_and_nothing_else(synth: Edge) -> None:
    keys = synth.resources("AWS::KMS::Key")
    if synth.encryption == "s3-managed":
        assert not keys
        return
    (key,) = keys.values()
    # This account's distributions, not this one: naming it would close a cycle (key -> bucket
    # -> distribution -> key); the bucket policy above still limits reads to it and edge/*.
    assert cloudfront_statements(key["Properties"]["KeyPolicy"]["Statement"]) == [
        {
            "Action": "kms:Decrypt",
            "Effect": "Allow",
            "Principal": CLOUDFRONT,
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "AWS:SourceArn": {
                        "Fn::Join": [
                            "",
                            [
                                "arn:", {"Ref": "AWS::Partition"}, ":cloudfront::",
                                {"Ref": "AWS::AccountId"}, ":distribution/*",
                            ],
                        ]
                    }
                }
            },
        }
    ]  # fmt: skip


def test_no_wildcard_action_and_nothing_open_to_everyone(synth: Edge) -> None:
    statements = all_policy_statements(synth)
    granted = cloudfront_statements(statements)
    assert granted, "no statement for cloudfront.amazonaws.com found"
    for statement in granted:
        assert all("*" not in action for action in as_list(statement["Action"])), statement
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert statement.get("Principal") not in ("*", {"AWS": "*"}), statement


# --- logging and removal ------------------------------------------------------------------------


def test_access_logs_go_to_a_private_tls_only_bucket_with_acls_enabled(synth: Edge) -> None:
    log_bucket = synth.edge.log_bucket
    log_bucket_id = synth.logical_id(log_bucket)
    assert synth.distribution_config()["Logging"] == {
        "Bucket": {"Fn::GetAtt": [log_bucket_id, "RegionalDomainName"]},
        "Prefix": "cloudfront/",
    }
    resource = synth.resources("AWS::S3::Bucket")[log_bucket_id]
    properties = resource["Properties"]
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        ]
    }
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    # Standard logging writes through the bucket ACL, which BucketOwnerEnforced would disable.
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]
    }
    assert {
        "Action": "s3:*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Resource": [
            {"Fn::GetAtt": [log_bucket_id, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [log_bucket_id, "Arn"]}, "/*"]]},
        ],
    } in synth.policy_of(log_bucket)
    expected = "Retain" if synth.retain else "Delete"
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == expected
    emptied = [
        r for r in synth.resources("Custom::S3AutoDeleteObjects").values()
        if r["Properties"]["BucketName"] == {"Ref": log_bucket_id}
    ]  # fmt: skip
    assert len(emptied) == (0 if synth.retain else 1)


# --- cdk-nag and cfn-lint -----------------------------------------------------------------------


def test_cdk_nag_leaves_no_finding(synth: Edge) -> None:
    # synth_edge raises NagFindings on any unacknowledged one; the report then lists none.
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    assert report["pluginReports"] == []


def test_only_the_findings_argued_for_are_acknowledged(synth: Edge) -> None:
    acknowledged = {
        (str(construct.node.path), rule)
        for construct in synth.edge.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for rule in entry.data
    }
    assert acknowledged == {
        ("Edge/EdgeDistribution/Logs", "Annotation::AwsSolutions-S1"),
        ("Edge/EdgeDistribution/Distribution", "Annotation::AwsSolutions-CFR1"),
        ("Edge/EdgeDistribution/Distribution", "Annotation::AwsSolutions-CFR2"),
        ("Edge/EdgeDistribution/Distribution", "Annotation::AwsSolutions-CFR4"),
    }


def test_cfn_lint_finds_no_error(synth: Edge) -> None:
    errors = [m for m in cfn_lint(synth.template_path) if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:5000]
