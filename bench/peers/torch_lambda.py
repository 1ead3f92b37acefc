"""The torch handler's Lambda entry point: importing it is the init phase (like functions.handler)."""

import os
from pathlib import Path

import torch
from mangum import Mangum

from bench.peers.torch_handler import create_app

ARTIFACT_ENV = "PEER_ARTIFACT_DIR"  # the published version's folder, already fetched

torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
app = create_app(Path(os.environ[ARTIFACT_ENV]))
handler = Mangum(app, lifespan="off")
