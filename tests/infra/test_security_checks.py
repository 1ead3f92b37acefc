"""cdk-nag and cfn-lint over the app as `make synth` builds it (infra.app.build).

Each synth runs AwsSolutionsChecks; a finding no `Validations.of(...).acknowledge(...)` covers
makes `app.synth()` raise, and the test prints the rules and constructs. cfn-lint must find no
error in the template; every warning it still gives is listed, with why, in docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build
from infra.settings import InfraSettings
from modelfn.registry import REPO_ROOT, Registry
from tests.infra.conftest import settings_for, stage_context

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"


class NagFindings(AssertionError):
    pass


def synth_app(
    outdir: Path,
    registry: Registry | None = None,
    overrides: dict[str, Any] | None = None,
    stage: str = "dev",
) -> Path:
    """`cdk synth -c stage=STAGE` of infra/app.py into `outdir`, minus the layer's pip install.

    `overrides` replace cdk.json's settings for that stage (`stage_context`).
    """
    context = stage_context(stage, **(overrides or {}))
    context["aws:cdk:bundling-stacks"] = []
    app = cdk.App(context=context, outdir=str(outdir))
    build(app, registry)
    synth_checked(app, outdir)
    return outdir


def synth_checked(app: cdk.App, outdir: Path) -> None:
    """`app.synth()` into `outdir`, raising NagFindings that name each unacknowledged finding."""
    try:
        app.synth()
    except RuntimeError as exc:
        report = outdir / "validation-report.json"
        if "ValidationFailed" not in str(exc) or not report.is_file():
            raise
        raise NagFindings("unacknowledged cdk-nag findings:\n" + findings(report)) from exc


def findings(report: Path) -> str:
    lines = []
    for plugin in json.loads(report.read_text(encoding="utf-8"))["pluginReports"]:
        for violation in plugin["violations"]:
            for construct in violation["violatingConstructs"]:
                lines.append(f"  {violation['ruleName']} at {construct['constructPath']}")
    return "\n".join(lines)


def cfn_lint(template: Path) -> list[dict[str, Any]]:
    cli = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cli), "--format", "json", str(template)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    # Exit status bits: 2 errors, 4 warnings, 8 informational; 1 is cfn-lint itself failing.
    assert result.returncode & 1 == 0, result.stderr[-3000:]
    matches: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    return matches


# Every option on at once, over cdk.json's staging settings.
MIXED_OVERRIDES: dict[str, Any] = {
    "bucket-encryption": "kms",
    "bucket-access-logs": True,
    "log-encryption": "kms",
    "alarm-email": "oncall@example.com",
    "auth": "jwt",
    "jwt-issuer": "https://login.example.com/",
    "jwt-audience": ["modelfn"],
    "cors-origins": ["https://app.example.com"],
    "domain-name": "api.example.com",
    "certificate-arn": "arn:aws:acm:us-east-1:123456789012:certificate/abcd-1234",
    "edge-distribution": True,
    # The page's files open without a token: APIG4 is acknowledged on those routes only.
    "playground": "jwt",
}


@pytest.fixture(scope="module")
def mixed(mixed_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_app(
        tmp_path_factory.mktemp("cdk.out"), mixed_registry, MIXED_OVERRIDES, stage="staging"
    )


def assert_lint_clean(outdir: Path) -> None:
    """cfn-lint: no error, and every warning explained in docs/deploy.md."""
    (template,) = outdir.glob("*.template.json")
    matches = cfn_lint(template)
    errors = [m for m in matches if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:5000]
    documented = set(re.findall(r"\b[WI]\d{4}\b", DEPLOY_DOC.read_text(encoding="utf-8")))
    undocumented = {m["Rule"]["Id"] for m in matches} - documented
    assert not undocumented, f"cfn-lint warnings not explained in docs/deploy.md: {undocumented}"


STAGES = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def stage_outdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """models.toml with cdk.json's settings for each stage: what `make synth-all` deploys.
    synth_app fails on any unacknowledged cdk-nag finding."""
    return {stage: synth_app(tmp_path_factory.mktemp("cdk.out"), stage=stage) for stage in STAGES}


@pytest.fixture(params=STAGES)
def stage_outdir(request: pytest.FixtureRequest, stage_outdirs: dict[str, Path]) -> Path:
    return stage_outdirs[request.param]


def test_every_stage_passes_cdk_nag_and_cfn_lint(stage_outdir: Path) -> None:
    assert_lint_clean(stage_outdir)


def policy_statements(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource type, logical id, statement) of every policy document in the template."""
    found = []
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props.get(key) for key in ("PolicyDocument", "KeyPolicy")]
        documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for document in filter(None, documents):
            for statement in document["Statement"]:
                found.append((resource["Type"], logical_id, statement))
    return found


def test_no_policy_in_any_stage_allows_a_wildcard_action(stage_outdir: Path) -> None:
    (path,) = stage_outdir.glob("*.template.json")
    template = json.loads(path.read_text(encoding="utf-8"))
    assert len(policy_statements(template)) > 10
    for kind, logical_id, statement in policy_statements(template):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        wildcards = [a for a in actions if "*" in a]
        if not wildcards or statement["Effect"] == "Deny":  # a Deny on s3:* only takes away (TLS)
            continue
        principal = json.dumps(statement.get("Principal"))
        # The two exceptions, both written by aws-cdk-lib, each for one reason:
        # - a KMS key's default policy gives the account root kms:*, which lets IAM policies
        #   grant use of the key (without it no IAM policy could); nothing else gets it;
        # - dev's auto-delete custom resource may list and delete objects of the stack's own
        #   buckets (s3:DeleteObject*, s3:GetBucket*, s3:List*) to empty them on `cdk destroy`.
        if kind == "AWS::KMS::Key" and actions == ["kms:*"] and ":root" in principal:
            continue
        if kind == "AWS::S3::BucketPolicy" and "CustomS3AutoDeleteObjects" in principal:
            continue  # only where the stage drops its data: the next test
        pytest.fail(f"{kind} {logical_id} allows wildcard actions {wildcards}: {statement}")


def test_only_a_stage_that_drops_its_data_can_delete_objects(stage_outdir: Path) -> None:
    (path,) = stage_outdir.glob("*.template.json")
    template = json.loads(path.read_text(encoding="utf-8"))
    deleters = [
        (logical_id, statement)
        for _, logical_id, statement in policy_statements(template)
        if statement["Effect"] == "Allow" and "s3:DeleteObject*" in json.dumps(statement["Action"])
    ]
    retain = any(r.get("DeletionPolicy") == "Retain" for r in template["Resources"].values())
    assert bool(deleters) == (not retain), deleters


def test_every_option_at_once_passes_cdk_nag_and_cfn_lint(mixed: Path) -> None:
    assert_lint_clean(mixed)


def test_turning_off_access_logs_is_a_finding(tmp_path: Path) -> None:
    # The checks really run: an opt-out of a security control fails the synth, naming it.
    with pytest.raises(NagFindings, match=r"AwsSolutions-S1 at \S+/Artifacts/Bucket/Resource"):
        synth_app(tmp_path, overrides={"bucket-access-logs": False})


# --- checkov ----------------------------------------------------------------------------------

CHECKOV = Path(os.environ.get("MODELFN_CHECKOV", REPO_ROOT / "build/checkov-venv/bin/checkov"))
CHECKOV_CONFIG = REPO_ROOT / "infra" / "checkov.toml"


def checkov(template: Path) -> list[tuple[str, str, str]]:
    """(check id, resource type, logical id) of each failed check on `template`."""
    if not CHECKOV.is_file():
        pytest.skip(f"checkov is not installed at {CHECKOV}: `make test` installs it")
    result = subprocess.run(
        [str(CHECKOV), "-f", str(template), "--framework", "cloudformation", "--quiet",
         "--compact", "-o", "json"],
        # BC_SKIP_MAPPING: no call to the vendor's API for guideline links (offline here).
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: some check failed
    report = json.loads(result.stdout)
    failed = report["results"]["failed_checks"] if report.get("results") else []
    assert report["summary"]["passed"] > 50, report["summary"]  # it did read the resources
    return [(f["check_id"], *f["resource"].split(".", 1)) for f in failed]


def checkov_entries() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads(CHECKOV_CONFIG.read_text(encoding="utf-8"))[
        "acknowledged"
    ]
    return entries


def applies(entry: dict[str, Any], settings: InfraSettings) -> bool:
    context = settings.model_dump(by_alias=True)
    return all(context[key] == value for key, value in entry.get("where", {}).items())


def covers(entry: dict[str, Any], check: str, kind: str, logical_id: str) -> bool:
    return (
        entry["check"] == check
        and entry["type"] == kind
        and (not entry.get("ids") or any(logical_id.startswith(i) for i in entry["ids"]))
    )


def test_checkov_finds_nothing_unacknowledged_in_any_template(
    stage_outdirs: dict[str, Path], mixed: Path
) -> None:
    """Every stage's template and the one with every option on: each failed check is one
    infra/checkov.toml acknowledges where it applies; and every entry is needed by some
    template, so none outlives its reason."""
    templates = {stage: (outdir, settings_for(stage)) for stage, outdir in stage_outdirs.items()}
    templates["every option"] = (mixed, settings_for("staging", **MIXED_OVERRIDES))
    entries = checkov_entries()
    used: set[int] = set()
    new = []
    for name, (outdir, settings) in templates.items():
        (template,) = outdir.glob("*.template.json")
        for finding in checkov(template):
            matches = [
                i for i, e in enumerate(entries) if applies(e, settings) and covers(e, *finding)
            ]
            used.update(matches)
            if not matches:
                new.append(f"  {name}: {finding[0]} on {finding[1]} {finding[2]}")
    assert not new, "checkov findings infra/checkov.toml does not acknowledge:\n" + "\n".join(new)
    stale = [e["check"] for i, e in enumerate(entries) if i not in used]
    assert not stale, f"infra/checkov.toml acknowledges checks no template fails: {stale}"


def test_each_checkov_acknowledgment_says_why() -> None:
    for entry in checkov_entries():
        assert len(entry["reason"].split()) >= 15, entry["check"]
        assert entry["type"].startswith("AWS::"), entry["check"]


def test_prod_encrypts_every_log_group_with_its_key(stage_outdirs: dict[str, Path]) -> None:
    (template,) = stage_outdirs["prod"].glob("*.template.json")
    resources = json.loads(template.read_text(encoding="utf-8"))["Resources"]
    [key_id] = [i for i in resources if i.startswith("LogKey")]
    groups = [r for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 5  # three functions, the canary checker and the API's access logs
    assert all(g["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]} for g in groups)
    key = resources[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    [logs] = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowThisAccountsLogGroups"
    ]
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    assert resources[key_id]["DeletionPolicy"] == "Retain"  # prod retains its log groups
