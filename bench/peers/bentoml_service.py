# mypy: ignore-errors
# (bentoml is installed in its own venv, build/bentoml-venv, not in the one mypy checks with)
"""BentoML as a peer: a BentoML service serving the same published ONNX graph, started the way
BentoML documents (`bentoml serve bench.peers.bentoml_service:OnnxService`), and, as a second
row, the eager torch model (`TorchService`).

It loads the version exactly as modelfn's function does (`load_model`: fetch into the cache,
verify, one onnxruntime session, the task adapter) from the same MODELFN_* settings, and its
`predict` API takes modelfn's friendly JSON ({"inputs": [...], "parameters": {...}}), so the
two differ in the server around the model: BentoML's HTTP server against a Lambda handler.
It runs in its own virtual environment (build/bentoml-venv, `bench/run.py` makes it), so
BentoML's pins never touch the project's.
"""

from __future__ import annotations

from typing import Any

import bentoml


@bentoml.service(workers=1)
class OnnxService:
    def __init__(self) -> None:
        from functions.model_loader import load_model
        from functions.settings import FunctionSettings

        self.model = load_model(FunctionSettings.resolve())

    @bentoml.api
    def predict(self, inputs: list[Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        outputs = self.model.predict(inputs, parameters or {})
        manifest = self.model.manifest
        return {
            "model": manifest.name,
            "version": manifest.version,
            "outputs": [o.model_dump() if hasattr(o, "model_dump") else o for o in outputs],
        }


@bentoml.service(workers=1)
class TorchService:
    """The second row: the same BentoML server around the eager torch model, rebuilt from the
    version's safetensors weights (as the torch handler does), with the same task adapters."""

    def __init__(self) -> None:
        import os

        import torch

        from bench.peers.torch_handler import torch_runner
        from functions.settings import FunctionSettings
        from functions.tasks import load_task
        from modelfn.store import open_store
        from modelfn.store.transfer import fetch_artifact
        from training.models import load_torch_model

        settings = FunctionSettings.resolve()
        self.manifest, folder = fetch_artifact(
            open_store(settings.store_uri, endpoint_url=settings.s3_endpoint_url),
            settings.model, settings.alias, settings.cache_dir,
        )  # fmt: skip
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
        self.task = load_task(self.manifest, folder)
        self.run = torch_runner(
            load_torch_model(folder), [t.name for t in self.manifest.inputs], [t.name for t in self.manifest.outputs]
        )

    @bentoml.api
    def predict(self, inputs: list[Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        outputs = self.task.predict(self.run, inputs, parameters or {})
        return {
            "model": self.manifest.name,
            "version": self.manifest.version,
            "outputs": [o.model_dump() if hasattr(o, "model_dump") else o for o in outputs],
        }
