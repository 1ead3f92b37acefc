"""CIFAR-10 in its official "python version" format, and its download.

The folder `cifar-10-batches-py/` holds pickled dicts with byte keys: `data_batch_1..5` and
`test_batch` (`b"data"`: uint8 [N, 3072], each row 1024 red, then 1024 green, then 1024 blue
values of a 32x32 image in row-major order; `b"labels"`: N ints in 0..9) and `batches.meta`
(`b"label_names"`). A full download has five training batches of 10,000 images; the project's
shared sample has only `data_batch_1`. Every `data_batch_*` present is read, so the same code
runs on both.

Pickle is the data set's official format and this runs only in training, never on the serving
path; `download_cifar10` checks the archive's published checksums before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from modelfn.artifact import DataFingerprint
from training.data.fingerprint import fingerprint_files

DATASET = "cifar10"
FOLDER = "cifar-10-batches-py"
META_FILE = "batches.meta"
TEST_FILE = "test_batch"
TRAIN_PREFIX = "data_batch_"

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# Published on https://www.cs.toronto.edu/~kriz/cifar.html (md5) and used by
# keras.datasets.cifar10 (sha256, `file_hash`); the archive is 170,498,071 bytes.
MD5 = "c58f30108f718f92721af3b95e74349a"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"

# Per-channel mean and std of the full 50,000-image training set, pixels scaled to 0..1.
# Fixed constants rather than statistics of whatever sample is loaded, so every version of the
# model (800 images or 50,000) expects the same input normalisation.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class ImageSplit:
    images: np.ndarray  # uint8 [N, 3, 32, 32], NCHW (the on-disk CHW order, torch's layout)
    labels: np.ndarray  # int64 [N], class indices into `Cifar10.label_names`

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Cifar10:
    train: ImageSplit
    test: ImageSplit
    label_names: list[str]  # official order: airplane, automobile, bird, ..., truck
    folder: Path
    files: list[str]  # the files read, in name order (what `fingerprint` hashes)


class DataFormatError(ValueError):
    """A file is not in the official CIFAR-10 python format; the message names the file."""


# --- loading ---------------------------------------------------------------------------------


def _unpickle(path: Path) -> dict[bytes, object]:
    with path.open("rb") as fh:
        # encoding="bytes": the files were pickled by Python 2; keys come back as bytes.
        obj = pickle.load(fh, encoding="bytes")
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return obj


def read_batch(path: Path) -> ImageSplit:
    """One batch file -> images uint8 [N, 3, 32, 32] and labels int64 [N]."""
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as exc:
        raise DataFormatError(
            f"{path}: missing key {exc.args[0]!r}; is this a CIFAR-10 batch?"
        ) from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataFormatError(
            f"{path}: b'data' has shape {data.shape} and {len(labels)} labels; expected [N, 3072] and N"
        )
    return ImageSplit(images=data.reshape(-1, 3, 32, 32), labels=labels)


def train_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{TRAIN_PREFIX}*") if p.is_file())


def load_cifar10(folder: Path) -> Cifar10:
    """Read every `data_batch_*` in `folder` (training), `test_batch` and `batches.meta`."""
    folder = Path(folder)
    names = train_files(folder) if folder.is_dir() else []
    missing = [n for n in (META_FILE, TEST_FILE) if not (folder / n).is_file()]
    if not names or missing:
        absent = ", ".join(missing + ([] if names else [f"{TRAIN_PREFIX}*"]))
        raise FileNotFoundError(
            f"{folder} is not a CIFAR-10 python folder (missing {absent}); point --data or "
            f"MODELFN_DATA_DIR at the folder that holds {FOLDER}/, or fetch it with download_cifar10"
        )
    batches = [read_batch(folder / n) for n in names]
    train = ImageSplit(
        images=np.concatenate([b.images for b in batches]),
        labels=np.concatenate([b.labels for b in batches]),
    )
    test = read_batch(folder / TEST_FILE)
    meta = _unpickle(folder / META_FILE)
    raw_names = meta.get(b"label_names")
    if not isinstance(raw_names, list):
        raise DataFormatError(f"{folder / META_FILE}: no b'label_names' list")
    label_names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw_names]
    for split_name, split in (("train", train), ("test", test)):
        if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(label_names)):
            raise DataFormatError(
                f"{folder}: {split_name} labels outside 0..{len(label_names) - 1}"
            )
    return Cifar10(
        train=train,
        test=test,
        label_names=label_names,
        folder=folder,
        files=sorted([*names, TEST_FILE, META_FILE]),
    )


def fingerprint(data: Cifar10) -> DataFingerprint:
    """sha256 over the files that were read (see `fingerprint_files`), with examples per split."""
    return fingerprint_files(
        DATASET, data.folder, data.files, {"train": len(data.train), "test": len(data.test)}
    )


# --- download --------------------------------------------------------------------------------


def _fetch(url: str, dest: Path) -> None:
    """Stream `url` to `dest` (tests replace this function; nothing else touches the network)."""
    with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as fh:
        shutil.copyfileobj(response, fh, length=1 << 20)


def _hashes(path: Path) -> tuple[str, str]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha.update(chunk)
    return md5.hexdigest(), sha.hexdigest()


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    """Only plain files and folders under cifar-10-batches-py/; no absolute paths, `..` or links."""
    parts = PurePosixPath(member.name).parts
    if (
        not parts
        or member.name.startswith("/")
        or ".." in parts
        or parts[0] != FOLDER
        or not (member.isfile() or member.isdir())
    ):
        raise DataFormatError(
            f"{archive}: refusing to extract member {member.name!r} (only plain files under {FOLDER}/)"
        )


def download_cifar10(
    dest_dir: str | Path,
    *,
    url: str = URL,
    md5: str = MD5,
    sha256: str | None = SHA256,
) -> Path:
    """Download the official archive into `dest_dir`, verify it, extract it; return `<dest_dir>/cifar-10-batches-py`.

    The archive is checked against `md5` (and `sha256` unless None) before it is opened, and
    extracted member by member with checks against path traversal. If the folder already holds
    a complete `cifar-10-batches-py/`, nothing is downloaded.

    >>> download_cifar10("~/data")  # doctest: +SKIP
    PosixPath('/home/me/data/cifar-10-batches-py')
    """
    dest = Path(dest_dir).expanduser()
    target = dest / FOLDER
    if (target / TEST_FILE).is_file() and (target / META_FILE).is_file() and train_files(target):
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".cifar10-download-") as tmp:
        archive = Path(tmp) / "cifar-10-python.tar.gz"
        _fetch(url, archive)
        got_md5, got_sha = _hashes(archive)
        if got_md5 != md5 or (sha256 is not None and got_sha != sha256):
            raise DataFormatError(
                f"{url}: downloaded archive has md5 {got_md5} / sha256 {got_sha}, expected md5 {md5}"
                + (f" / sha256 {sha256}" if sha256 else "")
                + "; the download is corrupt or not the official file, try again"
            )
        staging = Path(tmp) / "extracted"
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            # filter="data" (PEP 706) is a second guard: it also drops unsafe modes and owners.
            tar.extractall(staging, members=members, filter="data")
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier extraction
        # Same filesystem (tmp is inside dest), so this rename is atomic.
        (staging / FOLDER).rename(target)
    return target
