"""Each stage's whole CloudFormation template, compared with the one reviewed and committed.

A change to infra/, cdk.json or models.toml that changes what a stage deploys fails here until
the snapshot is updated, so the template diff is part of the change's review:

    MODELFN_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/infra/test_snapshots.py
    git diff tests/infra/snapshots/

Content hashes (assets, the version CDK publishes per code change) are replaced by placeholders
first: they change with every edit of the function code, which the asset tests cover.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path

import pytest

from modelfn.registry import REPO_ROOT, load_registry
from tests.infra.conftest import synthesize

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MODELFN_UPDATE_SNAPSHOTS") == "1"
# sha256 asset hashes (S3 keys, image tags, asset folders) and the hash CDK appends to the
# logical id of `function.current_version`.
HASHES = [
    (re.compile(r"[0-9a-f]{64}"), "<asset-hash>"),
    (re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}"), r"\1<code-hash>"),
]


def normalised(template: dict[str, object]) -> str:
    text = json.dumps(template, indent=1, sort_keys=True) + "\n"
    for pattern, placeholder in HASHES:
        text = pattern.sub(placeholder, text)
    return text


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_stage_template_matches_its_snapshot(stage: str, tmp_path: Path) -> None:
    synth = synthesize(load_registry(REPO_ROOT / "models.toml"), tmp_path, stage=stage)
    actual = normalised(synth.template.to_json())
    snapshot = SNAPSHOTS / f"{stage}.template.json"
    if UPDATE and (not snapshot.is_file() or snapshot.read_text(encoding="utf-8") != actual):
        snapshot.write_text(actual, encoding="utf-8")
        # Written, not checked: this run proves nothing about the template, so it is no pass.
        pytest.skip(
            f"updated snapshots/{stage}.template.json: review `git diff tests/infra/snapshots` "
            "and rerun without MODELFN_UPDATE_SNAPSHOTS"
        )
    assert snapshot.is_file(), f"no snapshot for {stage}; create it with MODELFN_UPDATE_SNAPSHOTS=1"
    expected = snapshot.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                f"snapshots/{stage}.template.json", "synthesized", n=2,
            )
        )  # fmt: skip
        pytest.fail(
            f"the {stage} template changed; if intended, update the snapshot "
            f"(MODELFN_UPDATE_SNAPSHOTS=1, see this module's docstring):\n{diff[:6000]}"
        )
