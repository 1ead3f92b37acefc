"""CIFAR-10 in its official "python version" format, and its download.

The folder `cifar-10-batches-py/` holds pickled dicts with byte keys: `data_batch_1..5` and
`test_batch` (`b"data"`: uint8 [N, 3072], each row 1024 red, then 1024 green, then 1024 blue
values of a 32x32 image in row-major order; `b"labels"`: N ints in 0..9) and `batches.meta`
(`b"label_names"`). A full download has five training batches of 10,000 images; the project's
shared sample has only `data_batch_1`. Every `data_batch_*` present is read, so the same code
runs on both.

Pickle is the data set's official format and this runs only in training, never on the serving
path. The files may come from anywhere (--data, $MODELFN_DATA_DIR, ../shared/data), so they are
read with `_CifarUnpickler`, which resolves only the few numpy globals a CIFAR-10 batch references
and refuses any other (a pickle naming `os.system` is refused, not run). `download_cifar10` also
checks a downloaded archive against its published checksums before extracting it; files already
on disk have no such check.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from modelfn.artifact import DataFingerprint
from training.data.fingerprint import fingerprint_files
from training.data.location import DATA_DIR_ENV
from training.errors import DataFormatError

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
    name: str = "test"  # what the trainer calls it in its figures ("validation" when carved)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Cifar10:
    train: ImageSplit
    test: ImageSplit
    label_names: list[str]  # official order: airplane, automobile, bird, ..., truck
    folder: Path
    files: list[str]  # the files read, in name order (what `fingerprint` hashes)


# --- loading ---------------------------------------------------------------------------------


def _numpy_reconstruct() -> Any:
    """numpy's array-unpickling helper; numpy 2 moved it from numpy.core to numpy._core."""
    try:
        return importlib.import_module("numpy._core.multiarray")._reconstruct
    except ImportError:  # numpy 1.x
        return importlib.import_module("numpy.core.multiarray")._reconstruct


_RECONSTRUCT = _numpy_reconstruct()


def _latin1_encode(text: str, encoding: str) -> bytes:
    """`_codecs.encode` as Python 3 pickles (protocol <= 2) use it to store bytes; latin-1 only."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}, expected latin1")
    return text.encode("latin-1")


# Every global a CIFAR-10 python batch references. ../shared/data's files (re-pickled by numpy 2,
# protocol 2; listed with pickletools.genops) name numpy._core.multiarray._reconstruct,
# numpy.ndarray, numpy.dtype and _codecs.encode (how Python 3 stores bytes at protocol 2). The
# official files were written by Python 2 and numpy 1.x, which spells numpy.core.multiarray.
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays; any other global is refused, never imported."""

    def __init__(self, fh: BinaryIO, path: Path) -> None:
        # encoding="bytes": the official files were pickled by Python 2; keys come back as bytes.
        super().__init__(fh, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str, /) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataFormatError(
                f"{self.path}: refusing to unpickle {module}.{name}; a CIFAR-10 batch references "
                f"only numpy arrays, so this is not an official CIFAR-10 file. Replace "
                f"{self.path.parent} with the official download (download_cifar10 into an empty "
                f"folder), or point --data / ${DATA_DIR_ENV} at the official files"
            ) from None


def _unpickle(path: Path) -> dict[bytes, object]:
    try:
        with path.open("rb") as fh:
            obj = _CifarUnpickler(fh, path).load()
    except DataFormatError:
        raise
    # A damaged pickle can fail in almost any way (the pickle docs list UnpicklingError, EOFError,
    # AttributeError, ImportError and IndexError; numpy adds ValueError and TypeError).
    except Exception as exc:
        raise _damaged(path, exc) from exc
    if not isinstance(obj, dict):
        raise DataFormatError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
    return obj


def _damaged(path: Path, exc: Exception) -> DataFormatError:
    return DataFormatError(
        f"{path}: cannot read it as a CIFAR-10 python file ({type(exc).__name__}: {exc}); it is "
        f"damaged or incomplete. Replace {path.parent} with a fresh official download "
        f"(download_cifar10 into an empty folder), or point --data / ${DATA_DIR_ENV} at a "
        f"complete copy"
    )


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
    except (TypeError, ValueError, OverflowError) as exc:
        raise _damaged(path, exc) from exc
    if (
        data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or labels.ndim != 1
        or len(data) != len(labels)
    ):
        raise DataFormatError(
            f"{path}: b'data' has shape {data.shape} and b'labels' {labels.shape}; expected [N, 3072] and [N]"
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
    if not isinstance(raw_names, list) or not all(isinstance(n, bytes | str) for n in raw_names):
        raise DataFormatError(
            f"{folder / META_FILE}: no b'label_names' list of names; is this a CIFAR-10 batches.meta?"
        )
    try:
        label_names = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in raw_names]
    except UnicodeDecodeError as exc:
        raise _damaged(folder / META_FILE, exc) from exc
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


def carve_validation(data: Cifar10, every: int) -> Cifar10:
    """The same data with training image i held out when i % every == 0, as a "validation"
    split in place of the test split, which is dropped.

    How `modelfn tune` selects without the test split: the trainer evaluates on whatever its
    `test` split is, so it trains on the rest and scores the held-out images. Deterministic
    (the batch files are already in random order), so every trial holds out the same images.
    """
    if every < 2 or len(data.train) < every:
        raise ValueError(f"cannot hold out every {every}th of {len(data.train)} training images")
    held = np.arange(len(data.train)) % every == 0
    return dataclasses.replace(
        data,
        train=ImageSplit(data.train.images[~held], data.train.labels[~held]),
        test=ImageSplit(data.train.images[held], data.train.labels[held], name="validation"),
    )
