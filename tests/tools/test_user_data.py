"""tools/user_data.py: the user's labelled data read in the layouts people keep it, and every
layout mistake refused with the folder, file or row and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.text_models import SHARED_DATA
from tests.support.user_data import cifar_test_images, write_label_folders
from tools.user_data import (
    UserDataError,
    read_image_folder,
    read_text_csv,
    read_unlabelled_csv,
)


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, list[str], list[Path]]:
    images, labels, names = cifar_test_images(12)
    files = write_label_folders(
        tmp_path / "pets", images, labels, names, sizes=((32, 32), (48, 40))
    )
    return tmp_path / "pets", names, files


def test_a_folder_per_label_reads_in_label_then_file_order(
    folder: tuple[Path, list[str], list[Path]],
) -> None:
    root, names, files = folder
    (root / "cat" / ".DS_Store").write_bytes(b"\0\1")  # a hidden file is no image: skipped
    (root / "labels.txt").write_text("\n".join(names))  # a note beside the folders is allowed
    data = read_image_folder(root, names)
    # Labels in the model's logit order, files sorted by name within each label.
    expected = sorted(files, key=lambda f: (names.index(f.parent.name), f.name))
    assert data.files == expected
    assert data.labels.tolist() == [names.index(f.parent.name) for f in expected]
    assert data.labels.dtype == np.int64 and data.label_names == names
    assert {f.suffix for f in data.files} == {".png", ".JPG"}
    assert set(data.sizes) == {(32, 32), (48, 40)}
    assert data.read(0) == expected[0].read_bytes()
    described = data.describe()
    assert described.startswith(
        f"12 images in {len(set(data.labels.tolist()))} label folders of {root}"
    )
    # The fingerprint names the bytes: change one file and it changes.
    expected[0].write_bytes(expected[1].read_bytes())
    assert read_image_folder(root, names).describe() != described


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda r: (r / "cat").rename(r / "Cat"),
            r"'Cat' is not a label.*case-sensitive: 'Cat' -> 'cat'",
        ),
        (
            lambda r: (r / "kittens").mkdir(),
            r"'kittens' is not a label of this model.*'airplane', 'automobile'",
        ),
        (
            lambda r: min(r.glob("*/*.png")).rename(r / "stray.png"),
            r"'stray.png' is outside any label folder",
        ),
        (
            lambda r: (r / "cat" / "more").mkdir(),
            r"cat: holds folder\(s\) 'more'.*move their images up",
        ),
        (
            lambda r: (r / "cat" / "notes.txt").write_text("x"),
            r"'notes.txt' is not .png, .jpg or .jpeg",
        ),
        (
            lambda r: (r / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really"),
            r"broken.png: not an image PIL can read",
        ),
    ],
    ids=["case", "unknown-label", "loose-image", "nested", "other-file", "corrupt"],
)
def test_a_folder_that_does_not_fit_is_refused_by_name(
    folder: tuple[Path, list[str], list[Path]], damage: object, message: str
) -> None:
    root, names, _ = folder
    damage(root)  # type: ignore[operator]
    with pytest.raises(UserDataError, match=message):
        read_image_folder(root, names)


def test_no_folder_and_no_images_say_what_layout_is_expected(tmp_path: Path) -> None:
    with pytest.raises(
        UserDataError, match=r"no such folder; give a folder laid out as PATH/<label>/"
    ):
        read_image_folder(tmp_path / "missing", ["cat"])
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(UserDataError, match=r"no .png, .jpg or .jpeg image in any label folder"):
        read_image_folder(tmp_path / "empty", ["cat"])
    (tmp_path / "reviews.csv").write_text("text,label\nfine,cat\n")
    with pytest.raises(
        UserDataError,
        match=r"reviews.csv is a file; an image classifier's --data is a folder laid out as "
        r"PATH/<label>/.*\(a CSV is for text models\)",
    ):
        read_image_folder(tmp_path / "reviews.csv", ["cat"])


def test_the_kaggle_imdb_csv_reads_with_its_own_column_names() -> None:
    csv_file = SHARED_DATA / "imdb" / "test.csv"
    if not csv_file.is_file():
        pytest.skip(f"{csv_file} not found")
    from training.data.imdb import LABELS, load_imdb

    data = read_text_csv(csv_file, LABELS, text_column="review", label_column="sentiment")
    reference = load_imdb(SHARED_DATA / "imdb").test  # training's own reader of the same file
    assert len(data.texts) == len(reference.texts) == 560
    assert data.labels.tolist() == reference.labels.tolist()
    assert data.texts == [t.strip() for t in reference.texts]
    assert data.rows[0] == 2 and data.describe().startswith(f"560 texts from {csv_file} (sha256 ")


def test_a_csv_with_the_default_columns_a_bom_and_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_bytes(
        "\ufefflabel,text,extra\n"
        'positive,"a fine film,\nwith a second line",1\n'
        "negative,dull,2\n".encode()
    )
    data = read_text_csv(path, ["negative", "positive"])
    assert data.texts == ["a fine film,\nwith a second line", "dull"]
    assert data.labels.tolist() == [1, 0] and data.rows == [3, 4]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "review,label\nfine,positive\n",
            r"no column 'text' in the header \('review', 'label'\).*--text-column",
        ),
        (
            "text,label\nfine,positive\nbad,Negative\nugh,meh\n",
            r"holds 'Negative', 'meh', not labels.*first 'Negative' at row 3.*'Negative' -> 'negative'",
        ),
        ("text,label\nfine,positive\n  ,negative\n", r"row 3: column 'text' is empty"),
        ("text,label\n", r"a header and no rows"),
    ],
    ids=["column", "unknown-label", "empty-text", "no-rows"],
)
def test_a_csv_that_does_not_fit_is_refused_by_row(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(UserDataError, match=message):
        read_text_csv(path, ["negative", "positive"])


def test_a_csv_that_is_not_utf8_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,label\ncaf\xe9,positive\n".encode("latin-1"))
    with pytest.raises(UserDataError, match=r"latin1.csv: not UTF-8.*save it as UTF-8"):
        read_text_csv(path, ["negative", "positive"])
    with pytest.raises(UserDataError, match=r"no such file; give a CSV with a header"):
        read_text_csv(tmp_path / "none.csv", ["negative", "positive"])


def test_a_feature_extractors_csv_needs_the_text_column_only(tmp_path: Path) -> None:
    csv_file = SHARED_DATA / "imdb" / "test.csv"
    if not csv_file.is_file():
        pytest.skip(f"{csv_file} not found")
    data = read_unlabelled_csv(csv_file, text_column="review")  # its sentiment column unread
    labelled = read_text_csv(
        csv_file, ["negative", "positive"], text_column="review", label_column="sentiment"
    )
    assert data.texts == labelled.texts and data.rows == labelled.rows and len(data.texts) == 560
    assert data.describe(name_only=True).startswith("560 texts from test.csv (sha256 ")
    path = tmp_path / "sentences.csv"
    path.write_text('text\n"one, with a comma"\ntwo\n')
    plain = read_unlabelled_csv(path)
    assert plain.texts == ["one, with a comma", "two"] and plain.rows == [2, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "sentence\nfine\n",
            (
                r"no column 'text' in the header \('sentence'\) on the file's first line; name the "
                r"columns with --text-column$"
            ),
        ),
        (  # no header: the first text is read as one
            "a very long first sentence that is no column name at all\nsecond\n",
            r"header \('a very long first sentence that is no\.\.\.'\) on the file's first line",
        ),
        ('text\nfine\n""\n', r"row 3: column 'text' is empty; every row needs a text"),
        ("text\n", r"a header and no rows"),
    ],
    ids=["column", "no-header", "empty-text", "no-rows"],
)
def test_an_unlabelled_csv_that_does_not_fit_is_refused_by_row(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "texts.csv"
    path.write_text(content)
    with pytest.raises(UserDataError, match=message):
        read_unlabelled_csv(path)


def test_a_folder_given_for_a_csv_says_which_layout_is_which(tmp_path: Path) -> None:
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    for read in (
        lambda p: read_unlabelled_csv(p),
        lambda p: read_text_csv(p, ["negative", "positive"]),
    ):
        with pytest.raises(
            UserDataError,
            match=r"photos is a folder; for a text model give a CSV with a header and .*"
            r"\(a folder per label is for image classifiers\)",
        ):
            read(tmp_path / "photos")
    with pytest.raises(UserDataError, match=r"no such file; give a CSV with a header and a column"):
        read_unlabelled_csv(tmp_path / "none.csv")
