"""download_cifar10's verify-and-extract path, on a small fake archive; never touches the network."""

import hashlib
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from training.data import cifar10
from training.data.cifar10 import download_cifar10, load_cifar10
from training.errors import DataFormatError


def _batch(n: int) -> bytes:
    rng = np.random.default_rng(n)
    return pickle.dumps(
        {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
    )


def _tarball(path, extra: list[tarfile.TarInfo] | None = None):
    files = {
        "cifar-10-batches-py/data_batch_1": _batch(4),
        "cifar-10-batches-py/test_batch": _batch(2),
        "cifar-10-batches-py/batches.meta": pickle.dumps(
            {b"label_names": [b"c%d" % i for i in range(10)]}
        ),
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def _digests(path):
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(monkeypatch):
    """Replace the network fetch with a copy of whichever file the test sets; record the URLs asked for."""
    state = {"source": None, "urls": []}

    def fake_fetch(url, dest):
        state["urls"].append(url)
        shutil.copy(state["source"], dest)

    monkeypatch.setattr(cifar10, "_fetch", fake_fetch)
    return state


def test_verified_archive_is_extracted_and_loadable(tmp_path, served):
    served["source"] = _tarball(tmp_path / "fake.tar.gz")
    md5, sha = _digests(served["source"])
    folder = download_cifar10(tmp_path / "data", md5=md5, sha256=sha)
    assert folder == tmp_path / "data" / "cifar-10-batches-py"
    assert served["urls"] == [cifar10.URL]
    data = load_cifar10(folder)
    assert len(data.train) == 4 and len(data.test) == 2
    # Nothing but the data folder is left behind (the archive lived in a temp folder).
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["cifar-10-batches-py"]
    # A second call finds the folder and does not download again.
    assert download_cifar10(tmp_path / "data", md5=md5, sha256=sha) == folder
    assert len(served["urls"]) == 1


def test_checksum_mismatch_refuses_and_extracts_nothing(tmp_path, served):
    served["source"] = _tarball(tmp_path / "fake.tar.gz")
    md5, _ = _digests(served["source"])
    with pytest.raises(DataFormatError, match="expected md5 c58f30108f718f92721af3b95e74349a"):
        download_cifar10(tmp_path / "data")  # the official checksums: the fake cannot match
    with pytest.raises(DataFormatError, match="sha256"):
        download_cifar10(tmp_path / "data", md5=md5, sha256="0" * 64)
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize(
    "member",
    [
        tarfile.TarInfo("cifar-10-batches-py/../../escaped"),
        tarfile.TarInfo("/tmp/absolute"),
        tarfile.TarInfo("elsewhere/file"),
    ],
    ids=["dotdot", "absolute", "outside-folder"],
)
def test_path_traversal_is_refused(tmp_path, served, member):
    member.size = 1
    served["source"] = _tarball(tmp_path / "evil.tar.gz", extra=[member])
    md5, sha = _digests(served["source"])
    with pytest.raises(DataFormatError, match="refusing to extract"):
        download_cifar10(tmp_path / "a" / "b" / "data", md5=md5, sha256=sha)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "escaped").exists()
    assert list((tmp_path / "a" / "b" / "data").iterdir()) == []


def test_links_are_refused(tmp_path, served):
    link = tarfile.TarInfo("cifar-10-batches-py/passwd")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    served["source"] = _tarball(tmp_path / "link.tar.gz", extra=[link])
    md5, sha = _digests(served["source"])
    with pytest.raises(DataFormatError, match="passwd"):
        download_cifar10(tmp_path / "data", md5=md5, sha256=sha)
