"""Where the data sets live: explicit argument, then $MODELFN_DATA_DIR, then <repo>/../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "MODELFN_DATA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]  # training/data/location.py -> repo root
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """Return the folder that holds the data sets (e.g. `cifar-10-batches-py/` inside it).

    Looked up in the same order as every other modelfn setting: `explicit`, then the
    environment variable MODELFN_DATA_DIR, then `<repo>/../shared/data`.

    >>> resolve_data_dir("/data")  # doctest: +SKIP
    PosixPath('/data')
    """
    if explicit is not None and str(explicit) != "":
        path, source = Path(explicit), "the data directory argument (--data)"
    elif os.environ.get(DATA_DIR_ENV):
        path, source = Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}"
    else:
        path, source = DEFAULT_DATA_DIR, "the default <repo>/../shared/data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"data directory {path} (from {source}) does not exist; pass --data PATH or set "
            f"{DATA_DIR_ENV} to the folder that holds the data sets"
        )
    return path
