"""A drift report's pictures: reference and captured shares side by side over the same bins.

Bins are the reference's deciles (their widths differ), so they are drawn as equal categories
with their ranges as labels: a shifted population shows as captured bars piling into a few bins,
or into the end bins the reference left empty.
"""

from __future__ import annotations

import numpy as np

from training.figures import png, use_file_backend


def shares_png(title: str, bins: list[str], reference: list[int], captured: list[int]) -> bytes:
    """Grouped bars: each bin's share of the reference and of the captured inputs."""
    use_file_backend()
    import matplotlib.pyplot as plt

    where = np.arange(len(bins))
    ref = np.asarray(reference, dtype=np.float64)
    cap = np.asarray(captured, dtype=np.float64)
    figure, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(bins) + 1.5), 3.5))
    ax.bar(where - 0.2, ref / max(ref.sum(), 1), width=0.4, label=f"reference ({int(ref.sum())})")
    ax.bar(where + 0.2, cap / max(cap.sum(), 1), width=0.4, label=f"captured ({int(cap.sum())})")
    ax.set_xticks(where, bins, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of inputs")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    return png(figure)
