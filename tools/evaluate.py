"""`modelfn evaluate MODEL`: a published version's test figures, recomputed through the handler.

The version is loaded by a real function app (fetch, sha256 checks, onnxruntime) and wrapped in
Mangum, as Lambda runs it; the model's whole test split goes through the friendly `predict`
route in API Gateway payload-2.0 events, and the figures training recorded in the manifest are
recomputed from the answers: accuracy, macro and per-class precision, recall and F1 for the
classifiers, the perplexity of each test sentence scored alone (`test_sentence_perplexity`) for
the language model. Anyone with the store and the data can check a published claim this way;
served equals trained when the two agree. `served` is that harness alone: the user-data
evaluation of an imported model (tools/user_evaluation.py) sends its examples through it too.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np

from modelfn.artifact import Manifest
from modelfn.registry import RegistryError, load_registry
from modelfn.store import ArtifactStore


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    """Requests of as many inputs as a function takes."""
    from functions.limits import MAX_BATCH

    for start in range(0, len(items), MAX_BATCH):
        yield items[start : start + MAX_BATCH]


def png_base64(chw_uint8: Any) -> str:
    """A uint8 [3, H, W] image (a CIFAR-10 row) as the base64 PNG the predict route takes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(chw_uint8.transpose(1, 2, 0)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


Predict = Callable[[list[Any], dict[str, Any]], list[dict[str, Any]]]


@contextmanager
def served(
    name: str, store: ArtifactStore, *, alias: str = "latest"
) -> Iterator[tuple[Manifest, Predict]]:
    """The version `alias` (an alias or a version) of `name` loaded by a real function app behind
    Mangum, and `predict(inputs, parameters)` sending one API Gateway event to it.

    The function writes its JSON log and metrics lines to stdout, as Lambda wants them; here they
    go to stderr, so a report printed on stdout stays readable (and `> report.txt` holds it alone).
    """
    from mangum import Mangum

    from functions.app import create_app
    from functions.log import logger
    from functions.settings import FunctionSettings
    from tools.local.events import http_api_event, response_parts
    from tools.local.lambda_context import LocalLambdaContext

    entry = load_registry().get(name)
    with (
        tempfile.TemporaryDirectory(prefix="modelfn-check-") as cache,
        _function_output_to_stderr(logger.registered_handler),
    ):
        settings = FunctionSettings(
            model=name, store_uri=store.uri, alias=alias, cache_dir=Path(cache)
        )
        app = create_app(settings)
        manifest = app.state.slot.get().manifest
        handler = Mangum(app, lifespan="off")
        context = LocalLambdaContext(
            function_name=name,
            memory_limit_in_mb=entry.serving.memory_mb,
            timeout_s=entry.serving.timeout_s,
        )

        def predict(inputs: list[Any], parameters: dict[str, Any]) -> list[dict[str, Any]]:
            body = json.dumps({"inputs": inputs, "parameters": parameters}).encode()
            event = http_api_event(
                "POST",
                f"/models/{name}/predict",
                headers={"content-type": "application/json"},
                body=body,
            )
            status, _, raw = response_parts(handler(event, context))
            if status != 200:
                raise PredictError(status, raw.decode("utf-8", "replace")[:300])
            outputs: list[dict[str, Any]] = json.loads(raw)["outputs"]
            return outputs

        yield manifest, predict


@contextmanager
def _function_output_to_stderr(log_handler: logging.Handler) -> Iterator[None]:
    """The function's log handler (a StreamHandler holding the stdout it was made with) and its
    metrics lines (written to sys.stdout) go to stderr for the duration."""
    assert isinstance(log_handler, logging.StreamHandler)  # Powertools' default handler
    previous = log_handler.setStream(sys.stderr)
    try:
        with redirect_stdout(sys.stderr):
            yield
    finally:
        if previous is not None:
            log_handler.setStream(previous)


class PredictError(RuntimeError):
    """The function answered a predict request with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"predict answered {status}: {body}")
        self.status, self.body = status, body


def served_metrics(
    name: str, store: ArtifactStore, *, alias: str = "latest", data: str | None = None
) -> dict[str, tuple[float, float]]:
    """Metric name -> (as the manifest records it, as recomputed through the handler).

    `alias` is an alias or a version; `data` the data root training read.
    """
    from training.recipe import load_data

    entry = load_registry().get(name)
    if entry.imported:
        raise RegistryError(
            f"{name} was imported (models.toml imported = true): modelfn holds no data set of its "
            "own to score it on; give your own labelled data with --data PATH (user_data_metrics)"
        )
    with served(name, store, alias=alias) as (manifest, predict):
        dataset = load_data(entry, data)
        if manifest.task == "language-modeling":
            found = {"test_sentence_perplexity": _perplexity(predict, dataset)}
        else:
            found = _classification(predict, dataset, manifest.task)
        return {k: (manifest.metrics[k], v) for k, v in found.items() if k in manifest.metrics}


def _perplexity(predict: Callable[..., list[dict[str, Any]]], data: Any) -> float:
    log_prob, tokens = 0.0, 0
    for texts in _batches([" ".join(words) for words in data.test]):
        for out in predict(texts, {"mode": "score"}):
            log_prob += out["log_prob"]
            tokens += out["token_count"]
    return math.exp(-log_prob / tokens)


def _classification(
    predict: Callable[..., list[dict[str, Any]]], data: Any, task: str
) -> dict[str, float]:
    from training.metrics import classification_report

    if task == "image-classification":
        inputs = [png_base64(image) for image in data.test.images]
    else:
        inputs = list(data.test.texts)
    labels = list(data.label_names)
    predicted = [
        labels.index(out["label"]) for batch in _batches(inputs) for out in predict(batch, {})
    ]
    report = classification_report(data.test.labels, np.asarray(predicted), len(labels))
    figures: dict[str, float] = report.figures(labels)
    return figures
