"""requirements.lock, read: the pinned, hashed versions the suite runs on, and the part that deploys.

`make` installs the development environment from requirements.lock with `--require-hashes`, so
the tests run on exactly those files. The dependency layer and the torch image install the part
of the lock their imports reach (`closure`), by hash too: the versions that deploy are the
versions that were tested, and two builds of one lock fetch the same bytes.

The lock is resolved for the development machine (CPython 3.11, x86_64), yet one set of lines
serves every target: uv's `--generate-hashes` records the hash of every file of each pinned
version, the cp312 manylinux wheels for x86_64 and aarch64 included, and pip picks the file for
the `--platform` it is given and refuses it unless its hash is listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from modelfn.registry import REPO_ROOT

LOCK_FILE = REPO_ROOT / "requirements.lock"

# uv's format: `name==version \`, then `    --hash=sha256:<hex> \` lines, then the packages that
# required it as `    # via name` or `    # via` followed by one `    #   name` line each.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")
_HASH = re.compile(r"^\s+--hash=sha256:([0-9a-f]{64})")
_VIA = re.compile(r"^\s+#\s+(?:via(?:\s+|$))?([A-Za-z0-9][A-Za-z0-9._-]*)?")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name ('Aws_Lambda.Powertools' -> 'aws-lambda-powertools')."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockedPackage:
    """One pinned package of the lock."""

    name: str  # canonical (PEP 503)
    version: str
    hashes: tuple[str, ...]  # sha256 of every file of this version the lock accepts
    required_by: frozenset[str]  # canonical names from uv's `# via` notes; "modelfn": pyproject

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"

    def requirement(self) -> str:
        """This package as a requirements-file entry that pip installs only by one of its hashes."""
        return " \\\n".join([self.pin, *(f"    --hash=sha256:{h}" for h in self.hashes)]) + "\n"


def read_lock(path: Path = LOCK_FILE) -> dict[str, LockedPackage]:
    """Every package of a uv-written lock, by canonical name; ValueError naming the file and the
    package when it cannot be read or a pin has no hash (pip would refuse it)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}; `make lock` writes it") from exc
    found: dict[str, tuple[str, list[str], set[str]]] = {}
    current: str | None = None
    for line in lines:
        if pin := _PIN.match(line):
            current = canonical_name(pin.group(1))
            found[current] = (pin.group(2), [], set())
        elif current is not None and (hash_ := _HASH.match(line)):
            found[current][1].append(hash_.group(1))
        elif current is not None and (via := _VIA.match(line)) and via.group(1):
            found[current][2].add(canonical_name(via.group(1)))
    if not found:
        raise ValueError(f"{path} pins no package: rewrite it with `make lock`")
    unhashed = sorted(name for name, (_, hashes, _) in found.items() if not hashes)
    if unhashed:
        raise ValueError(
            f"{path} pins {', '.join(unhashed)} without a --hash: rewrite it with `make lock` "
            "(uv pip compile --generate-hashes)"
        )
    return {
        name: LockedPackage(name, version, tuple(hashes), frozenset(via))
        for name, (version, hashes, via) in found.items()
    }


def closure(
    lock: dict[str, LockedPackage],
    roots: Iterable[str],
    *,
    leave_out: frozenset[str] = frozenset(),
    lock_path: Path = LOCK_FILE,
) -> list[LockedPackage]:
    """`roots` and every locked package they require, directly or not, sorted by name.

    The edges are the lock's `# via` notes, read backwards. Packages in `leave_out` are dropped
    and not walked through (boto3: the Lambda runtime has it, and what only it requires). A root
    the lock lacks is a ValueError: pyproject.toml was edited without `make lock`.
    """
    required: dict[str, set[str]] = {}
    for package in lock.values():
        for parent in package.required_by:
            required.setdefault(parent, set()).add(package.name)
    todo = [canonical_name(root) for root in roots]
    missing = sorted(name for name in todo if name not in lock and name not in leave_out)
    if missing:
        raise ValueError(
            f"{', '.join(missing)} not pinned in {lock_path}: pyproject.toml names what the lock "
            "lacks; run `make lock` and commit the lock"
        )
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name in leave_out:
            continue
        seen.add(name)
        todo.extend(required.get(name, ()))
    return [lock[name] for name in sorted(seen)]


def requirements_text(packages: Iterable[LockedPackage], header: str = "") -> str:
    """A requirements file pip installs with `--require-hashes`: `header`, then one entry each."""
    return header + "".join(package.requirement() for package in packages)
