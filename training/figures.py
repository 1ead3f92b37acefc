"""matplotlib for files: the backend without a screen, and a figure as PNG bytes.

The one place plots become files: the evaluation report (training/report.py) and the drift
report (tools/drift/) draw with it, on machines with no display.
"""

from __future__ import annotations

import io
from typing import Any


def use_file_backend() -> None:
    """Select matplotlib's Agg backend: files only, no display, no GUI toolkit. Call before
    pyplot is first imported."""
    import matplotlib

    matplotlib.use("Agg")


def png(figure: Any) -> bytes:
    """`figure` as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # metadata={"Software": None}: no matplotlib version in the file, so the bytes depend on the
    # figures alone.
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
