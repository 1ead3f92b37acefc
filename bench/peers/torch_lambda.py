"""The torch handler's Lambda entry point: importing it is the init phase (like functions.handler).

It reads the same settings as modelfn's function (MODELFN_MODEL, MODELFN_STORE_URI, MODELFN_ALIAS,
MODELFN_CACHE_DIR, MODELFN_S3_ENDPOINT_URL) and fetches the version the same way, from S3 or a
folder into its /tmp cache, so both servers start from the same published artifact.
"""

import os

import torch
from mangum import Mangum

from bench.peers.torch_handler import create_app, fetch_version
from functions.settings import FunctionSettings

torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
app = create_app(fetch_version(FunctionSettings.resolve()))
handler = Mangum(app, lifespan="off")
