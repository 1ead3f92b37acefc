"""What a region would refuse or silently break, checked at synth against the region a stage
deploys to: a custom domain's certificate from another region, CloudFront standard logs into a
bucket CloudFront never writes to, SnapStart where Lambda does not offer it for Python.

The stacks are environment-agnostic (no account or region in the template), so the region is
the one the CDK CLI resolves for the deployment: `CDK_DEFAULT_REGION`, which `cdk synth` and
`cdk deploy` set from the profile or AWS_REGION. Without it (an offline `make synth`) the checks
that need it are skipped, and the synth says so once. docs/deploy.md ("Before your first
deploy") lists what only a live account can confirm, with the command for each.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from modelfn.registry import ModelEntry

# Regions an account must opt into (AWS General Reference, "Managing AWS Regions", read
# 2026-12). CloudFront does not deliver standard (legacy) logs to buckets in these regions
# (CloudFront Developer Guide, "Choosing an Amazon S3 bucket for your standard logs").
OPT_IN_REGIONS = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-south-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-west-1",
        "eu-central-2",
        "eu-south-1",
        "eu-south-2",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
    }
)
# Where Lambda SnapStart for Python was launched (AWS What's New, 2024-11-18). AWS adds regions
# over time, so a region outside this list is a warning to check, not a refusal.
SNAPSTART_PYTHON_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "eu-central-1",
        "eu-west-1",
        "eu-north-1",
    }
)


class PreflightError(ValueError):
    """A setting this region cannot honour; the message names the setting and what would work."""


@dataclass(frozen=True)
class Preflight:
    """The checks' outcome: warnings for the synth to print (refusals raise PreflightError)."""

    region: str | None
    warnings: list[str] = field(default_factory=list)


def deploy_region(environ: Mapping[str, str] = os.environ) -> str | None:
    """The region an environment-agnostic stack deploys to, as the CDK CLI resolved it."""
    return environ.get("CDK_DEFAULT_REGION") or None


def certificate_region(arn: str) -> str:
    """'arn:aws:acm:eu-west-1:123456789012:certificate/...' -> 'eu-west-1'."""
    return arn.split(":")[3]


def preflight(
    *,
    stage: str,
    region: str | None,
    certificate_arn: str | None,
    edge_distribution: bool,
    entries: Sequence[ModelEntry],
) -> Preflight:
    """Refuse (PreflightError) or warn about what `region` cannot do for this stage."""
    snapstart = sorted(e.name for e in entries if e.serving.snapstart)
    if region is None:
        needs = [
            what
            for what, used in (
                ("the custom domain's certificate region", certificate_arn is not None),
                ("CloudFront's log bucket region", edge_distribution),
                ("SnapStart's availability", bool(snapstart)),
            )
            if used
        ]
        if not needs:
            return Preflight(region=None)
        unchecked = (
            f"stage {stage}: no deployment region known (CDK_DEFAULT_REGION is unset), so "
            f"{', '.join(needs)} went unchecked; `cdk deploy` sets it from your profile"
        )
        return Preflight(region=None, warnings=[unchecked])
    if certificate_arn is not None and certificate_region(certificate_arn) != region:
        raise PreflightError(
            f"stage {stage}: modelfn:certificate-arn is in {certificate_region(certificate_arn)}, "
            f"but the stack deploys to {region}; a regional HTTP API custom domain needs an ACM "
            f"certificate issued in {region}: request or import one there and set its ARN"
        )
    if edge_distribution and region in OPT_IN_REGIONS:
        raise PreflightError(
            f"stage {stage}: modelfn:edge-distribution is on, but {region} is an opt-in region, "
            "and CloudFront does not deliver standard logs to buckets there (the distribution's "
            "log bucket lives in the stack's region); turn edge-distribution off for this stage "
            "or deploy it to a region enabled by default"
        )
    warnings = []
    if snapstart and region not in SNAPSTART_PYTHON_REGIONS:
        warnings.append(
            f"stage {stage}: {', '.join(snapstart)} set serving.snapstart, and {region} was not "
            "among the regions Lambda SnapStart for Python launched in; check the Lambda "
            "SnapStart page for your region before deploying (the deploy fails there if it is "
            "not offered), or turn snapstart off"
        )
    return Preflight(region=region, warnings=warnings)
