"""Where the data sets live: explicit argument, then $MODELFN_DATA_DIR, then <repo>/../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

from modelfn.registry import REPO_ROOT

DATA_DIR_ENV = "MODELFN_DATA_DIR"
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """Return the folder that holds the data sets (e.g. `cifar-10-batches-py/` inside it).

    Looked up in the same order as every other modelfn setting: `explicit`, then the
    environment variable MODELFN_DATA_DIR, then `<repo>/../shared/data`.

    >>> resolve_data_dir("/data")  # doctest: +SKIP
    PosixPath('/data')
    """
    if explicit is not None and str(explicit) != "":
        path, source = Path(explicit).expanduser(), "the data directory argument (--data)"
    elif os.environ.get(DATA_DIR_ENV):
        path, source = Path(os.environ[DATA_DIR_ENV]).expanduser(), f"${DATA_DIR_ENV}"
    else:
        path, source = DEFAULT_DATA_DIR, "the default <repo>/../shared/data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"data directory {path} (from {source}) does not exist; pass --data PATH or set "
            f"{DATA_DIR_ENV} to the folder that holds the data sets"
        )
    return path


def data_root_for(path: str | Path | None, data_subdir: str) -> Path:
    """Return the data root that holds `data_subdir/`, given the root or the data set folder itself.

    `path` is looked up like every setting (see `resolve_data_dir`: `path`, then
    $MODELFN_DATA_DIR, then `<repo>/../shared/data`); wherever it comes from, both
    `/data` and `/data/cifar-10-batches-py` name the same data for `data_subdir="cifar-10-batches-py"`.

    Raises FileNotFoundError, naming the folder and `data_subdir`, for anything else.

    >>> data_root_for("~/data/cifar-10-batches-py", "cifar-10-batches-py")  # doctest: +SKIP
    PosixPath('/home/me/data')
    """
    root = resolve_data_dir(path)
    if (root / data_subdir).is_dir():
        return root
    if root.name == data_subdir:
        return root.parent
    raise FileNotFoundError(
        f"data directory {root} holds no {data_subdir}/ and is not that folder itself; pass "
        f"--data (or set {DATA_DIR_ENV} to) the folder that holds {data_subdir}/, or {data_subdir}/ itself"
    )
