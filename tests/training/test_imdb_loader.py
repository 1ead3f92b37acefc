"""The IMDB loader: the Kaggle CSV and the official aclImdb folder, real and damaged."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from training.data.imdb import LABELS, fingerprint, load_imdb
from training.errors import DataFormatError


def test_loads_the_csv_sample_with_a_deterministic_validation_split(imdb_dir: Path) -> None:
    data = load_imdb(imdb_dir)
    # 2,238 training rows: every tenth (i % 10 == 9) is validation.
    assert (len(data.train), len(data.valid), len(data.test)) == (2015, 223, 560)
    assert data.label_names == LABELS == ["negative", "positive"]
    assert data.test.labels.dtype == np.int64
    assert np.bincount(data.test.labels).tolist() == [284, 276]
    with (imdb_dir / "train.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert data.valid.texts[0] == rows[9][0] and data.train.texts[9] == rows[10][0]
    again = load_imdb(imdb_dir)
    assert again.valid.texts == data.valid.texts and fingerprint(again) == fingerprint(data)


def test_loads_the_official_folder_layout(imdb_dir: Path) -> None:
    data = load_imdb(imdb_dir / "aclImdb_tiny")
    assert len(data.train) + len(data.valid) == 20 and len(data.test) == 20
    assert np.bincount(data.test.labels).tolist() == [10, 10]  # neg, pos
    fp = fingerprint(data)
    assert fp.files[0] == "test/neg/0_2.txt" and len(fp.files) == 40


def test_a_folder_holding_aclimdb_is_found(imdb_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(imdb_dir / "aclImdb_tiny", tmp_path / "aclImdb")
    assert len(load_imdb(tmp_path).test) == 20


def _csv(tmp_path: Path, train: list[list[str]], test: list[list[str]]) -> Path:
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with (tmp_path / name).open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([["review", "sentiment"], *rows])
    return tmp_path


GOOD = [["A fine film.", "positive"], ["Dull.<br />Very dull.", "negative"]]


@pytest.mark.parametrize(
    ("train", "message"),
    [
        (
            [*GOOD, ["Meh", "neutral"]],
            r"train.csv record 3 \(line 4\): unknown sentiment 'neutral'",
        ),
        ([*GOOD, ["   ", "positive"]], r"train.csv record 3 \(line 4\): empty review"),
        ([*GOOD, ["only one field"]], r"train.csv record 3 \(line 4\): 1 fields, expected 2"),
    ],
)
def test_bad_csv_records_are_refused_by_record_and_line(
    tmp_path: Path, train, message: str
) -> None:
    with pytest.raises(DataFormatError, match=message):
        load_imdb(_csv(tmp_path, train, GOOD[:1] + [["Another one.", "negative"]]))


def test_a_review_in_both_splits_is_refused_naming_both(tmp_path: Path) -> None:
    folder = _csv(tmp_path, GOOD, [["Other.", "positive"], ["A fine film. ", "positive"]])
    with pytest.raises(
        DataFormatError, match=r"test.csv record 2 .* is the same review as .*train.csv record 1"
    ):
        load_imdb(folder)


def test_non_utf8_and_bad_headers_are_refused(tmp_path: Path) -> None:
    folder = _csv(tmp_path, GOOD, [["Other.", "positive"]])
    (folder / "test.csv").write_bytes(b'review,sentiment\n"caf\xe9",positive\n')
    with pytest.raises(DataFormatError, match=r"test.csv:2: not UTF-8 text"):
        load_imdb(folder)
    (folder / "test.csv").write_text("text,label\nx,positive\n")
    with pytest.raises(DataFormatError, match=r"test.csv:1: header \['text', 'label'\]"):
        load_imdb(folder)


def test_bad_files_in_the_folder_layout_are_named(imdb_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "aclImdb"
    shutil.copytree(imdb_dir / "aclImdb_tiny", root)
    (root / "train/pos/notes.txt").write_text("hello")
    with pytest.raises(DataFormatError, match=r"train/pos/notes.txt: not a review file"):
        load_imdb(root)
    (root / "train/pos/notes.txt").unlink()
    (root / "test/neg/0_2.txt").write_text("  \n")
    with pytest.raises(DataFormatError, match=r"test/neg/0_2.txt: empty review"):
        load_imdb(root)


def test_no_data_names_both_layouts(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"neither train.csv \+ test.csv \(Kaggle\) nor"):
        load_imdb(tmp_path)
