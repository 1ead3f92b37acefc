"""In CI (MODELFN_CI=1, which .ci/run sets) a skipped test fails the run, naming its reason;
locally it stays a skip. Checked on a throwaway test tree that uses the suite's own hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelfn.registry import REPO_ROOT

SKIPPING = """
import pytest

def test_needs_data():
    pytest.skip("the IMDB sample is not at ../shared/data/imdb")

@pytest.mark.skipif(True, reason="chromium is not installed")
def test_needs_a_browser():
    pass

def test_runs():
    assert True
"""


def run(tree: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MODELFN_CI"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    if ci:
        env["MODELFN_CI"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tree)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    # The suite's hook, and nothing else of its conftest, registered in a tree of its own.
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    return tmp_path


def test_locally_a_skip_stays_a_skip_with_its_reason(tree: Path) -> None:
    done = run(tree, ci=False)
    assert done.returncode == 0, done.stdout
    assert "1 passed, 2 skipped" in done.stdout
    assert "the IMDB sample is not at ../shared/data/imdb" in done.stdout


def test_in_ci_every_skip_fails_the_run_naming_its_reason(tree: Path) -> None:
    done = run(tree, ci=True)
    assert done.returncode == 1, done.stdout
    assert "skipped" not in done.stdout.splitlines()[-1]
    for reason in ("the IMDB sample is not at ../shared/data/imdb", "chromium is not installed"):
        assert f"skipped in CI (MODELFN_CI=1), which counts as a failure: {reason}" in done.stdout
