"""Your own labelled data, in the layouts people keep it, read for the commands that score an
imported model on it (`modelfn evaluate NAME --data PATH`, `modelfn export-edge NAME --data PATH`).

- Images: a folder per label, `PATH/<label>/*.png|*.jpg|*.jpeg` (torchvision's `ImageFolder`
  layout, and what most exports of a labelling tool give). Label folder names must be the
  model's labels; a label with no folder simply has no examples.
- Texts: a CSV with a header, one example per row, a text column and a label column holding the
  label's name (`text` and `label` unless told otherwise; the Kaggle IMDB file is
  `--text-column review --label-column sentiment`). A feature extractor has no labels: its CSV
  needs the text column only (`read_unlabelled_csv`).

Nothing here knows a task's pre-processing: images stay the bytes of their files (what a client
sends the function; the edge exporter decodes them as a device does) and texts stay text. Every
problem is refused with the file, the row or the folder, and the layout expected. Order is
deterministic (labels in the model's order, then file names), so two runs on the same folder
score the same examples and hold out the same calibration images.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_LAYOUT = "PATH/<label>/*.png|*.jpg|*.jpeg, one folder per label named as the model's label"
SHOWN = 8  # names listed in a message; the rest are counted


class UserDataError(ValueError):
    """The user's data does not fit the layout; the message names the file or folder and the fix."""


@dataclass(frozen=True)
class LabelledImages:
    """Image files and their labels, in a deterministic order."""

    root: Path
    files: list[Path]
    labels: NDArray[np.int64]  # [N], indices into label_names
    label_names: list[str]  # the model's labels, in logit order
    sizes: list[tuple[int, int]]  # (width, height) of each file, read from its header

    def read(self, index: int) -> bytes:
        return self.files[index].read_bytes()

    def describe(self, *, name_only: bool = False) -> str:
        """How many images, from where, and the sha256 of their names and bytes; `name_only`
        names the folder without its path (an edge bundle's bytes must not depend on it)."""
        folders = len(set(self.labels.tolist()))
        where = f"{self.root.name}/" if name_only else str(self.root)
        return f"{len(self.files)} images in {folders} label folders of {where} ({_fingerprint_line(self)})"


@dataclass(frozen=True)
class LabelledTexts:
    """Texts and their labels, in the file's row order."""

    source: Path
    texts: list[str]
    labels: NDArray[np.int64]  # [N], indices into label_names
    label_names: list[str]
    rows: list[int]  # each text's row number in the file (the header is row 1)

    def describe(self, *, name_only: bool = False) -> str:
        return _describe_csv(self.source, len(self.texts), name_only)


@dataclass(frozen=True)
class Texts:
    """Texts without labels (a feature extractor's), in the file's row order."""

    source: Path
    texts: list[str]
    rows: list[int]  # each text's row number in the file (the header is row 1)

    def describe(self, *, name_only: bool = False) -> str:
        return _describe_csv(self.source, len(self.texts), name_only)


def _describe_csv(source: Path, count: int, name_only: bool) -> str:
    """How many texts, from which file, and the file's sha256; `name_only` as for images."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    where = source.name if name_only else str(source)
    return f"{count} texts from {where} (sha256 {digest[:16]})"


# --- images ----------------------------------------------------------------------------------


def read_image_folder(path: str | Path, labels: Sequence[str]) -> LabelledImages:
    """The images under `path/<label>/`; `labels` are the model's, in logit order.

    Refused: a missing folder, or a file; a folder name that is not a label (named, with the labels, and a
    hint where only the case differs); an image file outside a label folder; a nested folder;
    a file that is not .png/.jpg/.jpeg; a file PIL cannot read; no image at all. Hidden files
    (`.DS_Store`) are skipped.
    """
    root = Path(path)
    if root.is_file():
        raise UserDataError(
            f"--data {root} is a file; an image classifier's --data is a folder laid out as "
            f"{IMAGE_LAYOUT} (a CSV is for text models)"
        )
    if not root.is_dir():
        raise UserDataError(
            f"--data {root}: no such folder; give a folder laid out as {IMAGE_LAYOUT}"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not _hidden(p))
    unknown = [p.name for p in folders if p.name not in labels]
    if unknown:
        raise UserDataError(
            f"{root}: {_few(unknown)} {'is not a label' if len(unknown) == 1 else 'are not labels'} "
            f"of this model{_case_hint(unknown, labels)}; label folders must be named as the "
            f"model's labels ({_few(list(labels))}): rename or move them out ({IMAGE_LAYOUT})"
        )
    loose = sorted(
        p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if loose:
        raise UserDataError(
            f"{root}: {_few(loose)} {'is' if len(loose) == 1 else 'are'} outside any label "
            f"folder; move each image into the folder of its label ({IMAGE_LAYOUT})"
        )
    by_label = {p.name: p for p in folders}
    files: list[Path] = []
    indices: list[int] = []
    for index, label in enumerate(labels):
        if label in by_label:
            found = _label_images(by_label[label])
            files += found
            indices += [index] * len(found)
    if not files:
        raise UserDataError(
            f"{root}: no .png, .jpg or .jpeg image in any label folder; lay it out as {IMAGE_LAYOUT}"
        )
    sizes = [_image_size(f) for f in files]
    return LabelledImages(root, files, np.asarray(indices, np.int64), list(labels), sizes)


def _label_images(folder: Path) -> list[Path]:
    entries = sorted(p for p in folder.iterdir() if not _hidden(p))
    nested = [p.name for p in entries if p.is_dir()]
    if nested:
        raise UserDataError(
            f"{folder}: holds folder(s) {_few(nested)}; a label folder holds image files only "
            f"({IMAGE_LAYOUT}): move their images up into {folder.name}/"
        )
    other = [p.name for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES]
    if other:
        raise UserDataError(
            f"{folder}: {_few(other)} {'is' if len(other) == 1 else 'are'} not .png, .jpg or "
            ".jpeg; convert or move them out (a label folder holds image files only)"
        )
    return entries


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header, checked by decoding the file once: a truncated or
    mislabelled file is named here, not as a failed request later."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            size = image.size
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserDataError(
            f"{path}: not an image PIL can read ({exc}); replace the file or move it out"
        ) from exc
    return size


def _fingerprint_line(data: LabelledImages) -> str:
    """sha256 over each file's path below the root and its bytes: names the exact data scored."""
    digest = hashlib.sha256()
    for file in data.files:
        digest.update(file.relative_to(data.root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return f"sha256 {digest.hexdigest()[:16]}"


# --- texts -----------------------------------------------------------------------------------


def read_text_csv(
    path: str | Path,
    labels: Sequence[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> LabelledTexts:
    """The rows of a CSV with a header: `text_column` the text, `label_column` its label's name.

    Refused: a missing file (or a folder); a file that is not UTF-8; either column absent (the
    header's columns are named, with the flags); an empty text; a label that is not one of
    `labels` (the unknown values are named, with the rows of the first); no row at all.
    """
    source = Path(path)
    layout = f"a CSV with a header and the columns {text_column!r} and {label_column!r}"
    rows = _csv_rows(source, layout, text_column, label_column)
    names = [row.label for row in rows]
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        first = [row.line for row in rows if row.label == unknown[0]][:3]
        raise UserDataError(
            f"{source}: column {label_column!r} holds {_few(unknown)}, not "
            f"{'a label' if len(unknown) == 1 else 'labels'} of this model (first {unknown[0]!r} at "
            f"row {', '.join(map(str, first))}){_case_hint(unknown, labels)}; write each label's "
            f"name as the model has it: {_few(list(labels))}"
        )
    return LabelledTexts(
        source,
        [row.text for row in rows],
        np.asarray([index[n] for n in names], np.int64),
        list(labels),
        [row.line for row in rows],
    )


def read_unlabelled_csv(path: str | Path, *, text_column: str = "text") -> Texts:
    """The texts of a CSV with a header, `text_column` one text a row; other columns (a label
    column too) are ignored: a feature extractor's figures compare two graphs, not a label.

    Refused as `read_text_csv` refuses: a missing file (or a folder), not UTF-8, no such column
    (the header's columns named, and that the first line is read as the header), an empty text
    (its row), no row.
    """
    source = Path(path)
    rows = _csv_rows(source, f"a CSV with a header and a column {text_column!r}", text_column, None)
    return Texts(source, [row.text for row in rows], [row.line for row in rows])


@dataclass(frozen=True)
class _Row:
    text: str
    label: str  # "" when no label column is read
    line: int  # the row's number in the file (the header is row 1)


def _csv_rows(source: Path, layout: str, text_column: str, label_column: str | None) -> list[_Row]:
    if source.is_dir():
        raise UserDataError(
            f"--data {source} is a folder; for a text model give {layout} (a folder per label is "
            "for image classifiers)"
        )
    if not source.is_file():
        raise UserDataError(f"--data {source}: no such file; give {layout}")
    columns = [text_column] + ([label_column] if label_column is not None else [])
    flags = "--text-column and --label-column" if label_column is not None else "--text-column"
    # Reviews run long: the csv module's default limit (128 KiB a field) would cut nothing we
    # serve (32 KiB a text) but refuses the whole file on one long field.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    rows: list[_Row] = []
    try:
        # utf-8-sig: spreadsheet programs write a byte-order mark before the header.
        with source.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in columns if c not in header]
            if missing:
                raise UserDataError(
                    f"{source}: no column {' or '.join(repr(c) for c in missing)} in the header "
                    f"({_few([_short(c) for c in header]) or 'empty'}) on the file's first line; "
                    f"name the columns with {flags}"
                )
            for row in reader:
                text = (row.get(text_column) or "").strip()
                if not text:
                    raise UserDataError(
                        f"{source} row {reader.line_num}: column {text_column!r} is empty; every "
                        "row needs a text"
                    )
                label = (row.get(label_column) or "").strip() if label_column is not None else ""
                rows.append(_Row(text, label, reader.line_num))
    except UnicodeDecodeError as exc:
        raise UserDataError(f"{source}: not UTF-8 ({exc}); save it as UTF-8 CSV") from exc
    except csv.Error as exc:
        raise UserDataError(f"{source}: not a CSV file this reader can parse ({exc})") from exc
    if not rows:
        raise UserDataError(f"{source}: a header and no rows; add one row per text")
    return rows


# --- shared ----------------------------------------------------------------------------------


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _short(name: str) -> str:
    """A header cell as a message shows it: a file without a header has a text there."""
    return name if len(name) <= 40 else name[:37] + "..."


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _case_hint(unknown: Sequence[str], labels: Sequence[str]) -> str:
    """Where a name differs from a label only in case: say which (labels are case-sensitive)."""
    folded = {label.casefold(): label for label in labels}
    pairs = [f"{n!r} -> {folded[n.casefold()]!r}" for n in unknown if n.casefold() in folded]
    return f" (labels are case-sensitive: {', '.join(pairs[:SHOWN])})" if pairs else ""
