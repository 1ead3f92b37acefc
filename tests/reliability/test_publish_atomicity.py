"""Publish atomicity (issue 11, item 4): a publish killed at any step, concurrent publishes and
concurrent promotes leave the store consistent, on the local store and on S3 (a moto server).

A killed publish is a real SIGKILL: a subprocess publishes through a store subclass that kills
its own process after its N-th completed write, or in the middle of the alias write (local: the
temp file written, not yet renamed; S3: the PUT's headers and half its body sent on a raw socket).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from modelfn.artifact import MANIFEST_FILE, file_key
from modelfn.store import (
    ArtifactStore,
    LocalStore,
    NotFound,
    S3Store,
    StoreError,
    fetch_artifact,
    list_published,
    publish_artifact,
    read_alias,
    set_alias,
)
from modelfn.store.base import Conflict
from modelfn.store.transfer import AliasMoved, read_alias_seen
from tests.reliability.conftest import scaled
from tests.support.manifests import write_artifact
from tools.local.s3_server import FAKE_CREDENTIALS, moto_s3_server

MODEL = "cifar10-cnn"
BUCKET = "atomicity"
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# Runs in the publishing subprocess: argv = kind, where, prefix, folder, step. step "N": SIGKILL
# after the N-th completed write; "alias": SIGKILL in the middle of writing the alias.
KILLER = r"""
import os, signal, socket, sys
from pathlib import Path
from urllib.parse import urlsplit
from tools.local.s3_server import FAKE_CREDENTIALS
from modelfn.store import LocalStore, S3Store, publish_artifact

kind, where, prefix, folder, step = sys.argv[1:]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
base = LocalStore if kind == "local" else S3Store
writes = 0

class Killing(base):
    def _count(self):
        global writes
        writes += 1
        if step == str(writes):
            die()
    def put_file(self, key, path, **conditions):
        super().put_file(key, path, **conditions); self._count()
    def put_bytes(self, key, data, **conditions):
        super().put_bytes(key, data, **conditions); self._count()

if kind == "local":
    store = Killing(where)
    if step == "alias":  # the alias's temp file is complete; the rename never happens
        real_link, real_replace = os.link, os.replace
        def guard(real):
            return lambda src, dst, *a, **k: die() if "/aliases/" in str(dst) else real(src, dst, *a, **k)
        os.link, os.replace = guard(real_link), guard(real_replace)
else:
    store = Killing(where.split("|")[1], prefix, endpoint_url=where.split("|")[0], credentials=FAKE_CREDENTIALS)
    if step == "alias":
        def half_sent(request, **_):
            if "/aliases/" not in request.url:
                return
            url = urlsplit(request.url)
            body = request.body if isinstance(request.body, bytes) else request.body.read()
            head = f"{request.method} {url.path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v.decode() if isinstance(v, bytes) else v}\r\n" for k, v in request.headers.items()
            )
            sock = socket.create_connection((url.hostname, url.port))
            sock.sendall(head.encode() + f"Host: {url.netloc}\r\n\r\n".encode() + body[: len(body) // 2])
            die()
        store.client.meta.events.register("before-send.s3.PutObject", half_sent)
publish_artifact(store, Path(folder))
"""


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as url:
        S3Store(BUCKET, endpoint_url=url, credentials=FAKE_CREDENTIALS).ensure_bucket()
        yield url


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str]:
    """(kind, where, prefix): enough for this process and a subprocess to open the same store."""
    if request.param == "local":
        return "local", str(tmp_path / "store"), ""
    url = request.getfixturevalue("s3_endpoint")
    return "s3", f"{url}|{BUCKET}", f"t-{uuid.uuid4().hex[:12]}"  # a fresh prefix per test


def open_backend(kind: str, where: str, prefix: str) -> ArtifactStore:
    if kind == "local":
        return LocalStore(where)
    url, bucket = where.split("|")
    return S3Store(bucket, prefix, endpoint_url=url, credentials=FAKE_CREDENTIALS)


def run_together(
    fn: Callable[[T], object], args: list[T]
) -> tuple[list[object], list[tuple[T, Exception]]]:
    """Call `fn` on each of `args` in its own thread, all released at once; (results, errors)."""
    start, results, errors = threading.Barrier(len(args)), [], []

    def one(arg: T) -> None:
        start.wait()
        try:
            results.append(fn(arg))
        except Exception as exc:  # noqa: BLE001  (collected: an exception in a thread would vanish)
            errors.append((arg, exc))

    threads = [threading.Thread(target=one, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def artifact(root: Path, rng: random.Random) -> Path:
    return write_artifact(root, weights=rng.randbytes(2048), onnx=rng.randbytes(4096))


def assert_serves(store: ArtifactStore, version: str, cache: Path) -> None:
    """`latest` names `version`, and it fetches and verifies (manifest sha256, every file's)."""
    assert read_alias(store, MODEL, "latest").version == version
    manifest, _ = fetch_artifact(store, MODEL, "latest", cache)
    assert manifest.version == version


# Writes of a two-file artifact: weights, graph, manifest, alias. "4" is the control: killed after
# everything, so the kill and the checks are seen to bite.
@pytest.mark.parametrize("step", ["1", "2", "3", "alias", "4"])
def test_a_publish_killed_at_any_step_leaves_the_old_version_served(
    backend: tuple[str, str, str], step: str, tmp_path: Path
) -> None:
    rng = random.Random(f"kill-{step}")
    store = open_backend(*backend)
    old = publish_artifact(store, artifact(tmp_path / "old", rng)).version
    folder = artifact(tmp_path / "new", rng)
    new = folder.name

    run = subprocess.run(
        [sys.executable, "-c", KILLER, *backend, str(folder), step],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL, (
        f"the publish was not killed at step {step}: {run.stderr}"
    )

    if step == "4":
        assert_serves(store, new, tmp_path / "cache-control")
        return
    assert_serves(store, old, tmp_path / "cache")
    assert fetch_artifact(store, MODEL, old, tmp_path / "cache-by-version")[0].version == old
    manifest_written = step in {"3", "alias"}
    published = list_published(store)
    assert [m.name for m in published] == [MODEL]
    assert published[0].aliases == {"latest": old}
    assert published[0].versions == sorted([old, new] if manifest_written else [old])
    assert not any(".tmp-" in key for key in store.list_keys(""))

    if not manifest_written:
        # Files without a manifest are not a version: readers and writers see nothing there ...
        with pytest.raises(NotFound):
            fetch_artifact(store, MODEL, new, tmp_path / "cache-new")
        with pytest.raises(StoreError, match="not published"):
            set_alias(store, MODEL, "prod", new)
        # ... and they do not block the retry, which keeps the identical leftovers.
        assert publish_artifact(store, folder).version == new
    else:
        # The manifest is the commit: the version is complete, only the alias move is missing.
        with pytest.raises(StoreError, match="already published.*modelfn alias"):
            publish_artifact(store, folder)
        set_alias(store, MODEL, "latest", new)
    assert_serves(store, new, tmp_path / "cache-after")


def test_a_leftover_file_with_other_bytes_refuses_the_publish(
    backend: tuple[str, str, str], tmp_path: Path
) -> None:
    store = open_backend(*backend)
    folder = artifact(tmp_path / "a", random.Random(1))
    store.put_bytes(file_key(MODEL, folder.name, "model.onnx"), b"someone else's graph")
    with pytest.raises(StoreError, match="other bytes.*delete the objects under"):
        publish_artifact(store, folder)
    assert not store.exists(file_key(MODEL, folder.name, MANIFEST_FILE))


def test_the_store_refuses_to_overwrite_or_to_swap_a_moved_object(
    backend: tuple[str, str, str],
) -> None:
    """What the backends themselves enforce (for S3: what moto's server honours)."""
    store = open_backend(*backend)
    store.put_bytes("m/v/manifest.json", b"one", if_none_match=True)
    with pytest.raises(Conflict):
        store.put_bytes("m/v/manifest.json", b"two", if_none_match=True)
    assert store.get_bytes("m/v/manifest.json") == b"one"

    store.put_bytes("m/aliases/prod.json", b"a", if_none_match=True)
    seen = store.get_if_changed("m/aliases/prod.json", None)
    assert seen is not None
    store.put_bytes("m/aliases/prod.json", b"b", if_match=seen.etag)  # the swap we read for
    with pytest.raises(Conflict):  # a second swap from the same read: the object moved since
        store.put_bytes("m/aliases/prod.json", b"c", if_match=seen.etag)
    with pytest.raises(Conflict):  # a swap of an object that is not there
        store.put_bytes("m/aliases/gone.json", b"c", if_match=seen.etag)
    assert store.get_bytes("m/aliases/prod.json") == b"b"


def test_a_promote_that_read_a_moved_alias_writes_nothing(
    backend: tuple[str, str, str], tmp_path: Path
) -> None:
    store = open_backend(*backend)
    rng = random.Random(7)
    v1, v2, v3 = (
        publish_artifact(store, artifact(tmp_path / f"b{i}", rng), aliases=()).version
        for i in range(3)
    )
    set_alias(store, MODEL, "prod", v1)
    seen = read_alias_seen(store, MODEL, "prod")  # promote A reads prod = v1 ...
    set_alias(store, MODEL, "prod", v2)  # ... promote B moves it meanwhile ...
    with pytest.raises(AliasMoved, match=f"from {v1} to {v2}"):  # ... and A must not undo B
        set_alias(store, MODEL, "prod", v3, seen=seen)
    assert read_alias(store, MODEL, "prod").version == v2


def test_a_canary_change_that_read_a_moved_alias_writes_nothing(
    backend: tuple[str, str, str], tmp_path: Path
) -> None:
    store = open_backend(*backend)
    rng = random.Random(8)
    v1, v2 = (
        publish_artifact(store, artifact(tmp_path / f"c{i}", rng), aliases=()).version
        for i in range(2)
    )
    set_alias(store, MODEL, "prod", v1, canary=v2, weight=10)
    seen = read_alias_seen(store, MODEL, "prod")  # a user reads the canary at 10% ...
    set_alias(store, MODEL, "prod", v1, seen=seen)  # ... the checker rolls it back meanwhile ...
    # ... and the user's raise of the canary's weight must not bring the rolled-back version back.
    with pytest.raises(AliasMoved, match=f"from {v1} \\+ canary {v2} at 10% to {v1}\\) while"):
        set_alias(store, MODEL, "prod", v1, seen=seen, canary=v2, weight=50)
    now = read_alias(store, MODEL, "prod")
    assert (now.version, now.canary) == (v1, None)
    # The other way round: a stale rollback must not undo a promotion to the canary.
    set_alias(store, MODEL, "prod", v1, canary=v2, weight=10)
    stale = read_alias_seen(store, MODEL, "prod")
    set_alias(store, MODEL, "prod", v2, seen=stale)
    with pytest.raises(AliasMoved):
        set_alias(store, MODEL, "prod", v1, seen=stale)
    assert read_alias(store, MODEL, "prod").version == v2


def test_concurrent_publishes_leave_complete_versions_and_one_alias(
    backend: tuple[str, str, str], tmp_path: Path
) -> None:
    seed = 11
    rng = random.Random(seed)
    rounds, writers = scaled(3, 20), 4
    for r in range(rounds):
        store = open_backend(
            backend[0],
            f"{backend[1]}-{r}" if backend[0] == "local" else backend[1],
            f"{backend[2]}-{r}",
        )
        folders = [artifact(tmp_path / f"r{r}w{w}", rng) for w in range(writers)]
        _, errors = run_together(
            lambda folder, store=store: publish_artifact(store, folder), folders
        )
        assert errors == [], f"seed {seed} round {r}: {errors}"
        versions = sorted(f.name for f in folders)
        assert list_published(store)[0].versions == versions
        for v in versions:
            assert fetch_artifact(store, MODEL, v, tmp_path / f"c{r}")[0].version == v
        latest = read_alias(store, MODEL, "latest").version
        assert latest in versions
        assert_serves(store, latest, tmp_path / f"cl{r}")


def test_concurrent_promotes_never_lose_one(tmp_path: Path) -> None:
    """Every promote that reports success replaced exactly what the one before it wrote: the
    successes form one chain from the first alias to the last (a lost update breaks the chain).

    Local store only: moto's server checks If-Match and then writes without a lock, so it cannot
    show exclusivity under concurrent requests (S3 does it atomically)."""
    from modelfn.registry import load_registry
    from modelfn.stages import stage_target
    from tools.promote import promote

    seed = 5
    rng = random.Random(seed)
    store = LocalStore(tmp_path / "store")
    entry, target = load_registry().get(MODEL), stage_target("prod")
    alias = target.alias_for(entry)
    rounds, writers = scaled(10, 200), 6
    versions = [
        publish_artifact(store, artifact(tmp_path / f"v{i}", rng), aliases=()).version
        for i in range(writers)
    ]
    set_alias(store, MODEL, alias, versions[0])
    moved = 0
    for r in range(rounds):
        first = read_alias(store, MODEL, alias).version
        contenders = [v for v in versions if v != first]
        done, errors = run_together(lambda v: promote(store, entry, v, target), contenders)
        unexpected = [e for _, e in errors if not isinstance(e, AliasMoved)]
        assert unexpected == [], f"seed {seed} round {r}: {unexpected}"
        assert len(done) + len(errors) == len(contenders)
        chain, at = {p.previous: p.version for p in done}, first  # type: ignore[attr-defined]
        assert len(chain) == len(done), (
            f"seed {seed} round {r}: two promotes replaced the same version"
        )
        for _ in done:
            at = chain[at]
        assert at == read_alias(store, MODEL, alias).version
        moved += len(errors)
    print(f"seed {seed}: {moved} promotes refused with AliasMoved over {rounds} rounds")
