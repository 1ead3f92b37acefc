"""The floors of the tree (pyproject's [tool.importlinter], run by `make lint`): they hold today,
and each kind of contract turns red on a planted violation, so a loosened or mistyped contract
cannot keep the bar green while an arrow runs back up."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelfn.registry import REPO_ROOT

PACKAGES = (
    "modelfn",
    "architectures",
    "training",
    "importing",
    "functions",
    "infra",
    "edge",
    "tools",
    "bench",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # --no-cache: the planted copy must be read afresh, never from a cached graph.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, check=False
    )


def broken_contracts(report: str) -> list[str]:
    """The names of the contracts the report marks BROKEN (names wrap at 80 columns there)."""
    listing = report.split("dependencies.", 1)[1].split("Contracts:", 1)[0]
    text = " ".join(line.strip() for line in listing.splitlines() if line.strip(" -"))
    pattern = r"\s*(.+?) (KEPT|BROKEN)(?: \(\d+ ignored imports?\))?"
    return [name for name, status in re.findall(pattern, text) if status == "BROKEN"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The packages and pyproject.toml, copied so a violation can be planted without harm."""
    for package in PACKAGES:
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy2(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract() -> None:
    done = lint_imports(REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 kept, 0 broken" in done.stdout and broken_contracts(done.stdout) == []


@pytest.mark.parametrize(
    ("module", "planted", "broken", "evidence"),
    [
        # the core reaching up to a floor that stands on it
        (
            "modelfn/text.py",
            "import functions.errors",
            "Floors",
            "modelfn.text -> functions.errors",
        ),
        # an architecture reaching into training (nanoGPT's rule)
        (
            "architectures/ptb_lstm.py",
            "import training.errors",
            "Floors",
            "architectures.ptb_lstm -> training.errors",
        ),
        # two floors that stand side by side
        ("infra/settings.py", "import edge.bundle", "Floors", "infra.settings -> edge.bundle"),
        # the zip path reaching training, even through a module the handler imports
        (
            "functions/deps.py",
            "import training.errors",
            "The Lambda handler reaches",
            "functions.deps -> training.errors",
        ),
        (
            "modelfn/registry.py",
            "import boto3",
            "boto3 and botocore only",
            "modelfn.registry -> boto3",
        ),
        ("functions/tensors.py", "import torch", "torch only in", "functions.tensors -> torch"),
        # the function running a Hugging Face tokenizer through transformers, not its file
        (
            "functions/tasks/tokenized_text.py",
            "import transformers",
            "transformers only in",
            "functions.tasks.tokenized_text -> transformers",
        ),
        ("modelfn/stages.py", "import aws_cdk", "CDK only in infra/", "modelfn.stages -> aws_cdk"),
        # the demo and the CLI importing each other (this issue found them doing it)
        ("tools/demo.py", "import tools.cli", "No circle", ".demo -> .cli"),
    ],
)
def test_a_planted_violation_turns_lint_red(
    tree: Path, module: str, planted: str, broken: str, evidence: str
) -> None:
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n{planted}  # planted\n")
    done = lint_imports(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert [name for name in broken_contracts(done.stdout) if name.startswith(broken)]
    assert evidence in done.stdout  # the planted import, named as the report names it
