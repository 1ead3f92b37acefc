import pickle
import pickletools
import shutil

import numpy as np
import pytest

from training.data.cifar10 import fingerprint, load_cifar10
from training.errors import DataFormatError, TrainingError

OFFICIAL_LABELS = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def test_loads_the_shared_sample_in_nchw_order(cifar_dir):
    data = load_cifar10(cifar_dir)
    assert data.train.images.shape == (800, 3, 32, 32)
    assert data.test.images.shape == (200, 3, 32, 32)
    assert data.train.images.dtype == np.uint8
    assert data.train.labels.dtype == np.int64
    assert data.label_names == OFFICIAL_LABELS
    assert np.bincount(data.train.labels).tolist() == [80] * 10
    assert np.bincount(data.test.labels).tolist() == [20] * 10
    # Row layout: 1024 red, 1024 green, 1024 blue, each row-major, so the reshape is NCHW.
    with (cifar_dir / "test_batch").open("rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    assert data.test.images[3, 0, 0, :7].tolist() == raw[3][:7].tolist()
    assert data.test.images[3, 1, 0, 0] == raw[3][1024]
    assert data.test.images[3, 2, 31, 31] == raw[3][3071]
    assert data.files == ["batches.meta", "data_batch_1", "test_batch"]


def test_reads_every_training_batch_present(cifar_dir, tmp_path):
    # A full download has data_batch_1..5; copying batch 1 as batch 2 stands in for it.
    for name in ("batches.meta", "data_batch_1", "test_batch"):
        shutil.copy(cifar_dir / name, tmp_path / name)
    shutil.copy(cifar_dir / "data_batch_1", tmp_path / "data_batch_2")
    data = load_cifar10(tmp_path)
    assert len(data.train) == 1600
    assert data.files == ["batches.meta", "data_batch_1", "data_batch_2", "test_batch"]
    assert fingerprint(data).examples == {"train": 1600, "test": 200}


def test_fingerprint_depends_on_file_bytes(cifar_dir, tmp_path):
    original = fingerprint(load_cifar10(cifar_dir))
    assert original.dataset == "cifar10"
    assert original.files == ["batches.meta", "data_batch_1", "test_batch"]
    assert original.examples == {"train": 800, "test": 200}
    for name in original.files:
        shutil.copy(cifar_dir / name, tmp_path / name)
    assert fingerprint(load_cifar10(tmp_path)).sha256 == original.sha256
    # Same pickle content, different bytes (protocol): a different fingerprint.
    with (tmp_path / "batches.meta").open("rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    (tmp_path / "batches.meta").write_bytes(pickle.dumps(meta, protocol=4))
    assert fingerprint(load_cifar10(tmp_path)).sha256 != original.sha256


def test_missing_files_are_named(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"batches\.meta, test_batch"):
        load_cifar10(tmp_path)


def test_wrong_shape_is_a_format_error(tmp_path):
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps(bad))
    (tmp_path / "test_batch").write_bytes(pickle.dumps(bad))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}))
    with pytest.raises(DataFormatError, match=r"data_batch_1.*\[N, 3072\]"):
        load_cifar10(tmp_path)


def _copy_sample(cifar_dir, dest):
    for name in ("batches.meta", "data_batch_1", "test_batch"):
        shutil.copy(cifar_dir / name, dest / name)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # an interrupted copy: EOFError inside pickle
        lambda raw: b"\x00" * 64,  # not a pickle at all: UnpicklingError
        lambda raw: b"",  # an empty file
        lambda raw: raw[:2] + b"\xff" + raw[3:],  # a flipped opcode byte near the start
    ],
    ids=["truncated", "zeros", "empty", "bad-opcode"],
)
def test_damaged_file_is_a_format_error_naming_it(cifar_dir, tmp_path, damage):
    _copy_sample(cifar_dir, tmp_path)
    raw = (tmp_path / "data_batch_1").read_bytes()
    (tmp_path / "data_batch_1").write_bytes(damage(raw))
    with pytest.raises(DataFormatError, match=r"data_batch_1.*damaged.*download_cifar10") as info:
        load_cifar10(tmp_path)
    # The CLI catches exactly TrainingError; a damaged file must be one.
    assert isinstance(info.value, TrainingError)


def test_damaged_meta_is_a_format_error(cifar_dir, tmp_path):
    _copy_sample(cifar_dir, tmp_path)
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"\xff\xfe"]}))
    with pytest.raises(DataFormatError, match=r"batches\.meta.*UnicodeDecodeError"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize(
    ("module", "name"),
    [("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"), ("numpy", "load")],
)
def test_pickle_naming_other_globals_is_refused(cifar_dir, tmp_path, module, name):
    # Protocol-0 opcodes for {b"data": <module.name>, b"labels": []}: the global is only named,
    # never called, so even an unrestricted unpickler would not run it.
    evil = f"(dS'data'\nc{module}\n{name}\nsS'labels'\n(ls.".encode()
    globals_named = [arg for op, arg, _ in pickletools.genops(evil) if op.name == "GLOBAL"]
    assert globals_named == [f"{module} {name}"]
    _copy_sample(cifar_dir, tmp_path)
    (tmp_path / "data_batch_1").write_bytes(evil)
    with pytest.raises(
        DataFormatError, match=rf"data_batch_1: refusing to unpickle {module}\.{name}"
    ):
        load_cifar10(tmp_path)


def test_numpy_1_pickles_as_in_the_official_files_load(cifar_dir, tmp_path):
    # The official batches were written by numpy 1.x, which names numpy.core.multiarray; a
    # protocol-2 pickle spells the global as text, so renaming the module gives the same bytes.
    _copy_sample(cifar_dir, tmp_path)
    raw = (tmp_path / "test_batch").read_bytes()
    assert b"cnumpy._core.multiarray\n_reconstruct\n" in raw
    (tmp_path / "test_batch").write_bytes(
        raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    )
    np.testing.assert_array_equal(
        load_cifar10(tmp_path).test.images, load_cifar10(cifar_dir).test.images
    )
