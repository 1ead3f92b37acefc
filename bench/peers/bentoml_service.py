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
        from functions.predict_schemas import PredictResponse
        from functions.settings import FunctionSettings

        self.model = load_model(FunctionSettings.resolve())
        self.response = PredictResponse

    @bentoml.api
    def predict(
        self, inputs: list[Any], parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        manifest = self.model.manifest
        outputs = self.model.predict(inputs, parameters or {})
        body = self.response(model=manifest.name, version=manifest.version, outputs=outputs)
        return body.model_dump(mode="json")


@bentoml.service(workers=1)
class TorchService:
    """The second row: the same BentoML server around the eager torch model, rebuilt from the
    version's safetensors weights by the torch handler's own loader."""

    def __init__(self) -> None:
        import os

        import torch

        from bench.peers.torch_handler import eager_predictor, fetch_version
        from functions.settings import FunctionSettings

        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
        self.predict_eager = eager_predictor(fetch_version(FunctionSettings.resolve()))

    @bentoml.api
    def predict(
        self, inputs: list[Any], parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return self.predict_eager(inputs, parameters or {})
