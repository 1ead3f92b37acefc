"""IMDB movie reviews (Maas et al. 2011), in either of their two public layouts.

- The Kaggle CSV ("IMDB Dataset of 50K Movie Reviews"): `train.csv` and `test.csv`, header
  `review,sentiment`, sentiment `positive` or `negative`; reviews keep their `<br />` markup.
- The official Stanford folder (`aclImdb/`): `train/{pos,neg}/ID_RATING.txt` and the same under
  `test/`; `train/unsup/` and the other files of the download are ignored. So the full download
  works unchanged: `--data` may point at the folder holding `imdb/`, at `imdb/` itself, or at a
  folder holding `aclImdb/`.

Every review is checked as it is read, and bad data stops the load with the file and the record:
non-UTF-8 or empty text, an unknown sentiment, a file name that is not `ID_RATING.txt`, and a
review that is in both the training and the test split (it would inflate test accuracy).

Splits are deterministic: the validation split is carved from the training data by position
(every `VALIDATION_EVERY`-th review), never from the test data, and never shuffled.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelfn.artifact import DataFingerprint, Substitution, TextPreprocessing
from training.data.fingerprint import fingerprint_files
from training.data.location import DATA_DIR_ENV
from training.data.text_files import read_utf8
from training.errors import DataFormatError

DATASET = "imdb"
FOLDER = "imdb"
LABELS = ["negative", "positive"]  # class index = position; the logits follow this order
FOLDER_LABELS = {"neg": "negative", "pos": "positive"}
CSV_HEADER = ["review", "sentiment"]
ACL_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")  # ID_RATING.txt, rating 1..10
VALIDATION_EVERY = 10  # training review i is validation when i % 10 == 9: 10% of it
PAD, UNK = "<pad>", "<unk>"

PREPROCESSING = TextPreprocessing(
    lowercase=True,
    substitutions=[
        Substitution(pattern=r"(?i)<br\s*/?>", replacement=" "),  # the reviews' line breaks
        # Words (letters, digits, inner apostrophes) and the two marks that carry sentiment.
        Substitution(pattern=r"[^\w'!?]+|_", replacement=" "),
        Substitution(pattern=r"([!?])", replacement=r" \1 "),
    ],
    strip_chars="'",  # quotes around a word, not the apostrophe of "don't"
    unknown_token=UNK,
    padding_token=PAD,
    ngrams=2,
    binary=True,  # presence of a word or bigram, as naive-Bayes features use it
    # The longest review of the full 50k set has about 2,500 words; the sample's has 1,511.
    max_tokens=2500,
)


@dataclass(frozen=True)
class TextSplit:
    texts: list[str]
    labels: np.ndarray  # int64 [N], indices into LABELS

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Imdb:
    train: TextSplit  # the training data minus validation
    valid: TextSplit  # carved from the training data, see VALIDATION_EVERY
    test: TextSplit
    label_names: list[str]
    folder: Path
    files: list[str]  # the files read, relative to `folder`, in name order


@dataclass(frozen=True)
class _Review:
    text: str
    label: int
    where: str  # "train.csv record 12 (line 40)" or "train/pos/0_9.txt", for error messages


# --- the two layouts -----------------------------------------------------------------------------


def read_csv(path: Path) -> list[_Review]:
    """One Kaggle-format CSV -> its reviews, checked record by record."""
    text = read_utf8(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{path}: empty file; expected the header review,sentiment") from None
    if [h.strip().lower() for h in header] != CSV_HEADER:
        raise DataFormatError(f"{path}:1: header {header}, expected {CSV_HEADER}")
    reviews = []
    for record, row in enumerate(reader, start=1):
        where = f"{path} record {record} (line {reader.line_num})"
        if len(row) != 2:
            raise DataFormatError(f"{where}: {len(row)} fields, expected 2 (review,sentiment)")
        review, sentiment = row
        if sentiment.strip() not in LABELS:
            raise DataFormatError(
                f"{where}: unknown sentiment {sentiment!r}; expected one of {LABELS}"
            )
        if not review.strip():
            raise DataFormatError(f"{where}: empty review")
        reviews.append(_Review(review, LABELS.index(sentiment.strip()), where))
    if not reviews:
        raise DataFormatError(f"{path}: no reviews after the header")
    return reviews


def read_acl_split(root: Path, split: str) -> tuple[list[_Review], list[str]]:
    """`root/split/{neg,pos}/ID_RATING.txt` -> reviews (neg, then pos, by ID) and file names."""
    reviews, names = [], []
    for folder_label, label in FOLDER_LABELS.items():
        folder = root / split / folder_label
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder} is missing; an aclImdb folder has {split}/neg and {split}/pos"
            )
        found = []
        for path in folder.iterdir():
            match = ACL_NAME.match(path.name)
            if not match or not path.is_file():
                raise DataFormatError(
                    f"{path}: not a review file; {split}/{folder_label}/ holds only ID_RATING.txt files"
                )
            found.append((int(match.group(1)), path))
        for _, path in sorted(found):
            text = read_utf8(path)
            if not text.strip():
                raise DataFormatError(f"{path}: empty review")
            reviews.append(_Review(text, LABELS.index(label), str(path)))
            names.append(str(path.relative_to(root)))
    return reviews, names


def _find_layout(folder: Path) -> tuple[str, Path]:
    if (folder / "train.csv").is_file() and (folder / "test.csv").is_file():
        return "csv", folder
    for candidate in (folder, folder / "aclImdb"):
        if (candidate / "train" / "pos").is_dir() and (candidate / "test" / "pos").is_dir():
            return "acl", candidate
    raise FileNotFoundError(
        f"{folder} holds neither train.csv + test.csv (Kaggle) nor train/{{pos,neg}} + "
        f"test/{{pos,neg}} (aclImdb); point --data or {DATA_DIR_ENV} at the folder that holds "
        f"{FOLDER}/ or at the IMDB folder itself"
    )


# --- loading ---------------------------------------------------------------------------------------


def load_imdb(folder: Path) -> Imdb:
    """Read IMDB from `folder` in whichever layout it has; see the module docstring."""
    layout, root = _find_layout(Path(folder))
    if layout == "csv":
        train, test, files = (
            read_csv(root / "train.csv"),
            read_csv(root / "test.csv"),
            ["test.csv", "train.csv"],
        )
    else:
        train, train_files = read_acl_split(root, "train")
        test, test_files = read_acl_split(root, "test")
        files = sorted(train_files + test_files)
    check_disjoint(train, test)
    is_valid = [i % VALIDATION_EVERY == VALIDATION_EVERY - 1 for i in range(len(train))]
    return Imdb(
        train=_split([r for r, v in zip(train, is_valid) if not v]),
        valid=_split([r for r, v in zip(train, is_valid) if v]),
        test=_split(test),
        label_names=list(LABELS),
        folder=root,
        files=files,
    )


def check_disjoint(train: list[_Review], test: list[_Review]) -> None:
    """DataFormatError if a review (ignoring surrounding whitespace) is in both splits."""
    seen = {review.text.strip(): review.where for review in train}
    for review in test:
        twin = seen.get(review.text.strip())
        if twin is not None:
            raise DataFormatError(
                f"{review.where} is the same review as {twin}: a test review seen in training "
                "inflates test accuracy; remove it from one of the two splits"
            )


def _split(reviews: list[_Review]) -> TextSplit:
    return TextSplit(
        texts=[r.text for r in reviews], labels=np.array([r.label for r in reviews], dtype=np.int64)
    )


def fingerprint(data: Imdb) -> DataFingerprint:
    examples = {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)}
    return fingerprint_files(DATASET, data.folder, data.files, examples)
