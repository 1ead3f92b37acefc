"""The torch handler's Lambda entry point: importing it is the init phase (like functions.handler).

It reads the same settings as modelfn's function (MODELFN_MODEL, MODELFN_STORE_URI, MODELFN_ALIAS,
MODELFN_CACHE_DIR, MODELFN_S3_ENDPOINT_URL) and fetches the version the same way, from S3 or a
folder into its /tmp cache, so both servers start from the same published artifact.
"""

import os

import torch
from mangum import Mangum

from bench.peers.torch_handler import create_app
from functions.settings import FunctionSettings
from modelfn.store import open_store
from modelfn.store.transfer import fetch_artifact

torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
settings = FunctionSettings.resolve()
_, folder = fetch_artifact(
    open_store(settings.store_uri, endpoint_url=settings.s3_endpoint_url),
    settings.model,
    settings.alias,
    settings.cache_dir,
)
app = create_app(folder)
handler = Mangum(app, lifespan="off")
