"""Reading a data set's text files: UTF-8 or a DataFormatError naming the file and line."""

from __future__ import annotations

from pathlib import Path

from training.errors import DataFormatError


def read_utf8(path: Path) -> str:
    """The file's text; a byte that is not UTF-8 fails with the file, its line and its offset."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(
            f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
