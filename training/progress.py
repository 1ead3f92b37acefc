"""The live progress bar of a training run: steps done, loss, learning rate and time left.

One bar over every optimiser step of the run (tqdm, on stderr), so its time-left estimate is the
run's, not an epoch's. `Progress(..., enabled=False)` draws nothing, for logs and tests
(`modelfn train --quiet`). While a bar runs, log lines go through `tqdm.write` (the CLI's log
function then), which keeps the bar below them.
"""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    def __init__(
        self, total: int, *, enabled: bool, description: str = "training", initial: int = 0
    ) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = tqdm(
            total=total,
            initial=initial,  # steps a resumed run had already done
            desc=description,
            unit="step",
            disable=not enabled,
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
        )

    def step(self, loss: float, lr: float, **status: Any) -> None:
        """One optimiser step done; show its loss (nats), learning rate and any other `status`."""
        self.bar.update(1)
        self.bar.set_postfix({"loss": f"{loss:.4f}", "lr": f"{lr:.3g}", **status}, refresh=False)

    def close(self) -> None:
        self.bar.close()
