"""SnapStart: what the function does around the snapshot Lambda takes of its initialised sandbox.

With SnapStart (zip functions on Python 3.12+), Lambda runs the init phase once per published
function version, snapshots its memory and /tmp, and resumes new sandboxes from that snapshot:
the model is loaded and its graph cached before the first request of any of them. Whatever the
init took that must be unique, fresh or secret is then shared by every sandbox resumed from it:
- before the snapshot, the store's S3 client is dropped: it holds the init's credentials and
  connections that are dead after a restore. Nothing else secret is held: the settings are
  names and URIs, and no request has been served yet;
- after a restore, Python's and numpy's global random generators are re-seeded from the OS (the
  generation mode draws its default seeds from `secrets` already), a new S3 client is opened on
  first use, and the first request reads the alias again, since the snapshot may be days old. A
  snapshot taken before the model was published holds a failed load: the first request after
  the restore loads it (without the reset it would answer 503 for up to MODELFN_LOAD_RETRY_S
  after every restore). Better still, publish before enabling SnapStart, or publish a new
  function version after publishing the model, so the snapshot holds the loaded model.

The hooks are registered with `snapshot_restore_py`, which the Lambda Python runtime provides;
where it is absent (locally, in tests without it) nothing is registered.
"""

from __future__ import annotations

import random

import numpy as np

from functions.log import logger
from functions.model_loader import ModelSlot


def before_snapshot(slot: ModelSlot) -> None:
    slot.forget_store()
    logger.info("snapshot: S3 client dropped", extra={"model": slot.settings.model})


def after_restore(slot: ModelSlot) -> None:
    random.seed()  # from os.urandom
    np.random.seed()  # the legacy global generator, from the OS
    slot.restored()  # a fresh client on first use, the alias read again, a failed load retried
    logger.info(
        "restored from snapshot: random generators re-seeded", extra={"model": slot.settings.model}
    )


def register_hooks(slot: ModelSlot) -> bool:
    """Register the hooks for `slot`; False where the runtime has no SnapStart module."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot, slot)
    register_after_restore(after_restore, slot)
    return True
