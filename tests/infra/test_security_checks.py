"""cdk-nag and cfn-lint over the app as `make synth` builds it (infra.app.build).

Each synth runs AwsSolutionsChecks; a finding no `Validations.of(...).acknowledge(...)` covers
makes `app.synth()` raise, and the test prints the rules and constructs. cfn-lint must find no
error in the template; every warning it still gives is listed, with why, in docs/deploy.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.app import build
from modelfn.registry import REPO_ROOT, Registry
from tests.infra.conftest import cdk_json_context

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"

class NagFindings(AssertionError):
    pass


def synth_app(
    outdir: Path, registry: Registry | None = None, overrides: dict[str, Any] | None = None
) -> Path:
    """`cdk synth` of infra/app.py into `outdir`, minus the layer's pip install (network).

    `overrides` replace cdk.json's `modelfn:` settings, as `-c modelfn:KEY=VALUE` would.
    """
    context = cdk_json_context()
    context.update({f"modelfn:{key}": value for key, value in (overrides or {}).items()})
    context["aws:cdk:bundling-stacks"] = []
    app = cdk.App(context=context, outdir=str(outdir))
    build(app, registry)
    try:
        app.synth()
    except RuntimeError as exc:
        report = outdir / "validation-report.json"
        if "ValidationFailed" not in str(exc) or not report.is_file():
            raise
        raise NagFindings("unacknowledged cdk-nag findings:\n" + findings(report)) from exc
    return outdir


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


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.toml with cdk.json's settings: what `make synth` deploys."""
    return synth_app(tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def mixed(mixed_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_app(
        tmp_path_factory.mktemp("cdk.out"),
        mixed_registry,
        {
            "architecture": "arm64",
            "bucket-encryption": "kms",
            "bucket-access-logs": True,
            "alarm-email": "oncall@example.com",
        },
    )


@pytest.mark.parametrize("which", ["shipped", "mixed"])
def test_cdk_nag_passes_and_cfn_lint_finds_no_error(
    which: str, request: pytest.FixtureRequest
) -> None:
    outdir: Path = request.getfixturevalue(which)  # the fixture fails on any nag finding
    (template,) = outdir.glob("*.template.json")
    matches = cfn_lint(template)
    errors = [m for m in matches if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:5000]
    documented = set(re.findall(r"\b[WI]\d{4}\b", DEPLOY_DOC.read_text(encoding="utf-8")))
    undocumented = {m["Rule"]["Id"] for m in matches} - documented
    assert not undocumented, f"cfn-lint warnings not explained in docs/deploy.md: {undocumented}"


def test_turning_off_access_logs_is_a_finding(tmp_path: Path) -> None:
    # The checks really run: an opt-out of a security control fails the synth, naming it.
    with pytest.raises(NagFindings, match=r"AwsSolutions-S1 at \S+/Artifacts/Bucket/Resource"):
        synth_app(tmp_path, overrides={"bucket-access-logs": False})
