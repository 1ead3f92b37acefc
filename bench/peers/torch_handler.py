"""The handler most tutorials and AWS's container-image inference samples deploy, as a peer.

A FastAPI app behind Mangum that imports torch, rebuilds the eager model from the artifact's
safetensors weights at init (never a pickle) and runs it per request; an imported torch module is
rebuilt with its user's own factory, as that user's handler would. Pre- and post-processing
are modelfn's own task adapters with a torch runner in place of onnxruntime, so the two
servers differ only in the engine and in what they import: the comparison the benchmark makes.

An imported Hugging Face text classifier is served as its user's torch handler serves one, with
transformers: the model rebuilt by AutoModelForSequenceClassification from the version's
config.json and model.safetensors, the texts tokenised by transformers' tokenizer over its
tokenizer.json, the tensors passed straight to the model; only the answer's shape (label, score,
top_k) is modelfn's adapter's. For it the two servers differ in the tokenizer's wrapper too.

    MODELFN_MODEL=cifar10-cnn MODELFN_STORE_URI=model_artifacts \
        python -c "from bench.peers.torch_lambda import handler"

The route is modelfn's friendly one, POST /models/{name}/predict, with the same JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse

from architectures import load_torch_model
from functions.errors import BadInput
from functions.predict_schemas import PredictResponse
from functions.settings import FunctionSettings
from functions.tasks import Runner, Task, load_task
from functions.tasks.text_classification import TextClassifier
from modelfn.artifact import (
    WEIGHTS_FILE,
    ArtifactError,
    Manifest,
    TokenizerPreprocessing,
    read_manifest,
)
from modelfn.store import open_store
from modelfn.store.transfer import fetch_artifact


def torch_runner(model: torch.nn.Module, input_names: list[str], output_names: list[str]) -> Any:
    """A task adapter's Runner over the eager model: feeds by graph input name, in graph order."""

    @torch.inference_mode()
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = model(
            *(torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in input_names)
        )
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {name: out.numpy() for name, out in zip(output_names, outputs, strict=True)}

    return run


def fetch_version(settings: FunctionSettings) -> Path:
    """The served version's folder, fetched (S3 or a folder) and verified into the cache exactly
    as modelfn's function fetches it."""
    _, folder = fetch_artifact(
        open_store(settings.store_uri, endpoint_url=settings.s3_endpoint_url),
        settings.model, settings.alias, settings.cache_dir,
    )  # fmt: skip
    return folder


def eager_model(folder: Path, manifest: Manifest) -> torch.nn.Module:
    """The eager model a hand-written handler runs: a built-in architecture rebuilt from the
    manifest, or an imported torch module built as its user's code builds it (the import record's
    factory and arguments, e.g. tests.support.resnet:resnet18) with the version's own weights.
    The factory's package must be importable here, as it is in that user's container image."""
    record = manifest.imported
    if record is None:
        return load_torch_model(folder)
    if record.source != "torch-module":  # a Hugging Face folder goes to eager_task's other arm
        raise ArtifactError(
            f"{manifest.name} {manifest.version} was imported from an ONNX file: there is no torch "
            "module to rebuild, so the torch handler cannot serve it"
        )
    from safetensors.torch import load_file

    from importing.torch_module import build_module, load_weights

    module = build_module(record.reference, record.options.get("factory_args") or {})
    weights = folder / WEIGHTS_FILE  # fetch_artifact verified its sha256
    load_weights(module, load_file(str(weights)), str(weights))
    return module.eval()


def hugging_face_classifier(folder: Path, manifest: Manifest) -> tuple[Task, Runner]:
    """An imported Hugging Face text classifier as transformers serves it: the task adapter
    (texts -> transformers' tokenizer) and the runner (token tensors -> the model's logits).

    The tokenizer is called as transformers' docs call it, with the version's settings: padding
    to the batch's longest text, truncation at its max_length, its pad token and sides."""
    from transformers import AutoModelForSequenceClassification, PreTrainedTokenizerFast

    pre = manifest.preprocessing
    if manifest.task != "text-classification" or not isinstance(pre, TokenizerPreprocessing):
        raise ArtifactError(
            f"{manifest.name} {manifest.version} is a Hugging Face {manifest.task} model: the "
            "torch handler serves Hugging Face text classifiers only"
        )
    model = AutoModelForSequenceClassification.from_pretrained(
        str(folder), local_files_only=True, trust_remote_code=False
    ).eval()  # config.json and model.safetensors: fetch_artifact verified their sha256
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]  # unannotated
        tokenizer_file=str(folder / pre.file),
        padding_side=pre.padding_side,
        truncation_side=pre.truncation_side,
        # what the folder's tokenizer_config.json said: the tensors the model takes
        model_input_names=[k for k, graph_input in pre.inputs.model_dump().items() if graph_input],
    )
    tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pre.pad_id)

    def encode(texts: list[Any], name: str) -> dict[str, np.ndarray]:
        found = tokenizer(
            texts,
            padding="max_length" if pre.padding == "max_length" else True,
            truncation=pre.truncation,
            max_length=pre.max_length,
            return_tensors="np",
        )
        return dict(found)

    output = manifest.outputs[0].name

    @torch.inference_mode()
    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tensors = {name: torch.from_numpy(array) for name, array in feeds.items()}
        return {output: model(**tensors).logits.numpy()}

    return TextClassifier(manifest, encode), run


def eager_task(folder: Path, manifest: Manifest) -> tuple[Task, Runner]:
    """The task adapter and the runner over the eager model: modelfn's adapter with a torch
    runner, or a Hugging Face classifier as transformers runs it."""
    record = manifest.imported
    if record is not None and record.source == "huggingface":
        return hugging_face_classifier(folder, manifest)
    run = torch_runner(
        eager_model(folder, manifest),
        [t.name for t in manifest.inputs],
        [t.name for t in manifest.outputs],
    )
    return load_task(manifest, folder), run


def eager_predictor(folder: Path) -> Callable[[list[Any], dict[str, Any]], dict[str, Any]]:
    """`predict(inputs, parameters)` -> modelfn's PredictResponse body, over the eager model."""
    manifest = read_manifest(folder)
    task, run = eager_task(folder, manifest)

    def predict(inputs: list[Any], parameters: dict[str, Any]) -> dict[str, Any]:
        outputs = task.predict(run, inputs, parameters)
        body = PredictResponse(model=manifest.name, version=manifest.version, outputs=outputs)
        return body.model_dump(mode="json")

    return predict


def create_app(folder: Path) -> FastAPI:
    served = read_manifest(folder).name
    predict_eager = eager_predictor(folder)
    app = FastAPI()

    @app.post("/models/{name}/predict")
    def predict(name: str, body: dict[str, Any]) -> JSONResponse:
        if name != served:
            raise HTTPException(404, f"this function serves {served}, not {name}")
        try:
            return JSONResponse(predict_eager(body["inputs"], body.get("parameters", {})))
        except (BadInput, KeyError) as exc:
            raise HTTPException(400, str(exc)) from None

    return app
