"""The Penn Treebank loader on the real files, and on damaged copies of them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training.data.ptb import fingerprint, load_ptb
from training.errors import DataFormatError


def test_loads_the_three_official_splits(ptb_dir: Path) -> None:
    data = load_ptb(ptb_dir)
    # Sentences and words per split, as ../shared/data/README.md gives them (words without <eos>).
    counts = {
        s: (len(data.split(s)), sum(map(len, data.split(s)))) for s in ("train", "valid", "test")
    }
    assert counts == {"train": (42068, 887521), "valid": (3370, 70390), "test": (3761, 78669)}
    assert data.train[1][:4] == ["pierre", "<unk>", "N", "years"]
    assert len({w for s in data.train for w in s}) == 9999
    assert data.files == ["ptb.test.txt", "ptb.train.txt", "ptb.valid.txt"]


def test_the_fingerprint_covers_the_files_and_counts_sentences(
    ptb_dir: Path, tmp_path: Path
) -> None:
    fp = fingerprint(load_ptb(ptb_dir))
    assert fp.dataset == "ptb" and fp.examples == {"train": 42068, "valid": 3370, "test": 3761}
    copy = _copy(ptb_dir, tmp_path)
    (copy / "ptb.test.txt").write_text(
        (ptb_dir / "ptb.test.txt").read_text().replace("the", "a", 1)
    )
    assert fingerprint(load_ptb(copy)).sha256 != fp.sha256


def _copy(src: Path, dst: Path) -> Path:
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        shutil.copy(src / name, dst / name)
    return dst


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda t: t.replace(b"\n", b"\n\n", 1), r"ptb.valid.txt:2: empty line"),
        (lambda t: t.replace(b"the", b"th\xe9", 1), r"ptb.valid.txt:\d+: not UTF-8 text"),
        (lambda t: t.replace(b" the ", b" <eos> ", 1), r"ptb.valid.txt:\d+: contains '<eos>'"),
        (lambda t: b"", r"ptb.valid.txt: no sentences"),
    ],
)
def test_damaged_text_is_refused_naming_file_and_line(
    ptb_dir: Path, tmp_path: Path, damage, message: str
) -> None:
    copy = _copy(ptb_dir, tmp_path)
    path = copy / "ptb.valid.txt"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataFormatError, match=message):
        load_ptb(copy)


def test_a_missing_split_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "ptb.train.txt").write_text("a b\n")
    with pytest.raises(FileNotFoundError, match=r"missing ptb.valid.txt, ptb.test.txt"):
        load_ptb(tmp_path)
