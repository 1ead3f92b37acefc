"""`modelfn check MODEL`: the test-split figures recomputed through the Lambda handler.

The published version is loaded by a real function app (fetch, sha256 checks, onnxruntime) and
wrapped in Mangum, as Lambda runs it; the model's whole test split goes through the friendly
`predict` route in API Gateway payload-2.0 events, and the figure training recorded in the
manifest is recomputed from the answers: accuracy for the classifiers, the perplexity of each
test sentence scored alone (`test_sentence_perplexity`) for the language model. Served equals
trained when the two agree.
"""

from __future__ import annotations

import base64
import io
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelfn.registry import load_registry
from modelfn.store import ArtifactStore

BATCH = 64  # inputs per request: the functions' MAX_BATCH


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def served_metric(
    name: str, store: ArtifactStore, *, alias: str = "latest", data: str | None = None
) -> tuple[str, float, float]:
    """(metric name, as the manifest records it, as recomputed through the handler)."""
    from mangum import Mangum

    from functions.app import create_app
    from functions.settings import FunctionSettings
    from modelfn.local.events import http_api_event, response_parts
    from modelfn.local.lambda_context import LocalLambdaContext
    from training.data.location import data_root_for
    from training.pipeline import DATASETS

    entry = load_registry().get(name)
    with tempfile.TemporaryDirectory(prefix="modelfn-check-") as cache:
        settings = FunctionSettings(model=name, store_uri=store.uri, alias=alias, cache_dir=Path(cache))
        app = create_app(settings)
        manifest = app.state.slot.get().manifest
        handler = Mangum(app, lifespan="off")
        context = LocalLambdaContext(function_name=name, memory_limit_in_mb=entry.serving.memory_mb, timeout_s=entry.serving.timeout_s)

        def predict(inputs: list[Any], parameters: dict[str, Any]) -> list[dict[str, Any]]:
            body = json.dumps({"inputs": inputs, "parameters": parameters}).encode()
            event = http_api_event("POST", f"/models/{name}/predict", headers={"content-type": "application/json"}, body=body)
            status, _, raw = response_parts(handler(event, context))
            if status != 200:
                raise RuntimeError(f"predict answered {status}: {raw[:300]!r}")
            outputs: list[dict[str, Any]] = json.loads(raw)["outputs"]
            return outputs

        dataset = DATASETS[entry.dataset].load(data_root_for(data, entry.data_subdir) / entry.data_subdir)
        if manifest.task == "language-modeling":
            return "test_sentence_perplexity", manifest.metrics["test_sentence_perplexity"], _perplexity(predict, dataset)
        return "accuracy", manifest.metrics["accuracy"], _accuracy(predict, dataset, manifest.task)


def _perplexity(predict: Callable[..., list[dict[str, Any]]], data: Any) -> float:
    log_prob, tokens = 0.0, 0
    for texts in _batches([" ".join(words) for words in data.test]):
        for out in predict(texts, {"mode": "score"}):
            log_prob += out["log_prob"]
            tokens += out["token_count"]
    return math.exp(-log_prob / tokens)


def _accuracy(predict: Callable[..., list[dict[str, Any]]], data: Any, task: str) -> float:
    if task == "image-classification":
        from PIL import Image

        def png(chw: Any) -> str:
            buffer = io.BytesIO()
            Image.fromarray(chw.transpose(1, 2, 0)).save(buffer, format="PNG")
            return base64.b64encode(buffer.getvalue()).decode("ascii")

        inputs = [png(image) for image in data.test.images]
    else:
        inputs = list(data.test.texts)
    truth = [data.label_names[int(i)] for i in data.test.labels]
    predicted = [out["label"] for batch in _batches(inputs) for out in predict(batch, {})]
    return float(sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth))
