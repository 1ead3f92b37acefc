"""Real example requests, and the served version's answers to them, for the OpenAPI document.

The inputs are the version's own `examples.json`: held-out data that training picked
(training/examples.py): CIFAR-10 test images, IMDB test reviews, Penn Treebank test sentences;
for an imported tensor model, the JSON text of one example's named tensors. A version published
without the file gets its task's `generic` input instead, and says so. The
answers are not written by hand: each request runs through the code its route runs, once per
version, so the document shows what this model really says (generation uses a fixed seed, so
the same version always documents the same words).

`TASK_DOCS` holds per task what the routes' models cannot say: the task's own parameters and
outputs, and what its example requests look like. A new task adds a row here beside its
`ADAPTERS` row (a test checks the two tables name the same tasks).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from functions.errors import ApiError, describe_validation_errors
from functions.log import logger
from functions.model_loader import LoadedModel
from functions.oip_inference import run_inference
from functions.oip_schemas import InferenceRequest
from functions.predict_schemas import PredictRequest, PredictResponse
from functions.tasks.classification import Classification, ClassificationParameters
from functions.tasks.feature_extraction import Embedding
from functions.tasks.image_classification import preprocess
from functions.tasks.language_model import (
    Continuation,
    LanguageModelParameters,
    NextWords,
    TextScore,
)
from functions.tasks.runner import NoParameters
from functions.tasks.tensor import (
    TensorModel,
    TensorOutputs,
    example_inputs,
    named_tensors_schema,
)
from functions.tasks.text_inputs import TEXT_INPUT
from functions.tensors import DATATYPES
from modelfn.artifact import (
    EXAMPLES_FILE,
    ArtifactError,
    Example,
    Examples,
    ImagePreprocessing,
    parse_examples,
    read_verified,
)

GENERIC = "generic"  # the `dataset` of a made-up example, for a version without examples.json
IMAGE_EXAMPLES = 3  # friendly examples; OIP gets the first only (an image is 3,072 numbers)
TENSOR_EXAMPLES = 3  # likewise for tensors, whose size the importer chose
SEED = 7  # generation examples draw with this seed, so their words are reproducible


@dataclass(frozen=True)
class ExampleRequest:
    """One example input as each route takes it; `infer` is None where OIP shows no example."""

    key: str  # unique in the document, e.g. "test-3"
    summary: str
    predict: dict[str, Any]
    infer: dict[str, Any] | None


@dataclass(frozen=True)
class RouteExample:
    """A request body and the answer the served version gives it."""

    key: str
    summary: str
    request: dict[str, Any]
    response: dict[str, Any]


@dataclass(frozen=True)
class VersionExamples:
    source: str  # EXAMPLES_FILE, or GENERIC for a version without one
    predict: list[RouteExample]
    infer: list[RouteExample]
    predict_error: RouteExample  # a 400 of each route, with the message the route gives
    infer_error: RouteExample


Requests = Callable[[LoadedModel, Examples], list[ExampleRequest]]


@dataclass(frozen=True)
class TaskDocs:
    parameters: type[BaseModel]  # what `parameters` of the friendly route takes
    outputs: tuple[type[BaseModel], ...]  # what one of its `outputs` can be
    generic: Callable[[LoadedModel], str]  # a made-up input, for a version without examples.json
    requests: Requests
    # Tasks whose messages depend on the model (the tensor task's names and shapes): the JSON
    # schema of one item of `inputs` and of one of `outputs`; None: the generic ones above.
    item_schema: Callable[[LoadedModel], dict[str, Any]] | None = None
    output_schema: Callable[[LoadedModel], dict[str, Any]] | None = None


# --- what each task's examples look like ---------------------------------------------------------


def describe(example: Example, examples: Examples, noun: str) -> str:
    """'cifar10 test image 3 (cat)', or what a made-up example is."""
    if examples.dataset == GENERIC:
        return f"a made-up {noun} (this version ships no {EXAMPLES_FILE})"
    label = f" ({example.label})" if example.label else ""
    return f"{examples.dataset} {example.split} {noun} {example.index}{label}"


def text_tensor(text: str) -> dict[str, Any]:
    return {"name": TEXT_INPUT, "shape": [1], "datatype": "BYTES", "data": [text]}


def image_requests(model: LoadedModel, examples: Examples) -> list[ExampleRequest]:
    spec = model.manifest.preprocessing
    assert isinstance(spec, ImagePreprocessing)  # the adapter loaded, so the manifest says so
    (graph_input,), _ = model.task.signature()
    top_k = min(3, len(model.manifest.labels))
    requests = []
    for i, example in enumerate(examples.examples[:IMAGE_EXAMPLES]):
        infer = None
        if i == 0:
            # The normalised tensor the graph takes, to 4 decimals: a readable 3,072 numbers,
            # and the answer below is computed from exactly these.
            tensor = preprocess([example.input], spec)
            data = [round(v, 4) for v in tensor.ravel().tolist()]
            infer = {
                "inputs": [
                    {
                        "name": graph_input.name,
                        "shape": list(tensor.shape),
                        "datatype": "FP32",
                        "data": data,
                    }
                ]
            }
        requests.append(
            ExampleRequest(
                key=f"{example.split}-{example.index}",
                summary=describe(example, examples, "image"),
                predict={"inputs": [example.input], "parameters": {"top_k": top_k}},
                infer=infer,
            )
        )
    return requests


def text_requests(model: LoadedModel, examples: Examples) -> list[ExampleRequest]:
    return [
        ExampleRequest(
            key=f"{example.split}-{example.index}",
            summary=describe(example, examples, "text"),
            predict={"inputs": [example.input]},
            infer={"inputs": [text_tensor(example.input)]},
        )
        for example in examples.examples
    ]


def prompt(text: str) -> str:
    """A sentence's opening half (at least 3 words): what a user asks the model to continue."""
    words = text.split()
    return " ".join(words[: max(3, len(words) // 2)])


def language_model_requests(model: LoadedModel, examples: Examples) -> list[ExampleRequest]:
    """One request per mode, each on another sentence where there are enough."""
    shipped = examples.examples
    modes: list[tuple[str, dict[str, Any], Callable[[str], str], str]] = [
        ("next", {"mode": "next", "top_k": 5}, prompt, "next words after the opening of"),
        ("score", {"mode": "score"}, str, "perplexity of"),
        (
            "generate",
            {"mode": "generate", "max_tokens": 12, "seed": SEED},
            prompt,
            "continue the opening of",
        ),
    ]
    requests = []
    for i, (mode, parameters, text_of, what) in enumerate(modes):
        example = shipped[i % len(shipped)]
        text = text_of(example.input)
        requests.append(
            ExampleRequest(
                key=mode,
                summary=f"{mode}: {what} {describe(example, examples, 'sentence')}",
                predict={"inputs": [text], "parameters": parameters},
                infer={"inputs": [text_tensor(text)], "parameters": parameters},
            )
        )
    return requests


def tensor_requests(model: LoadedModel, examples: Examples) -> list[ExampleRequest]:
    """Each example's named tensors (the JSON text of one example) as both routes take them."""
    adapter = TensorModel(model.manifest)
    requests: list[ExampleRequest] = []
    for example in examples.examples[:TENSOR_EXAMPLES]:
        key = f"{example.split}-{example.index}"
        try:
            named = example_inputs(example.input)
            tensors = adapter.example(named, key)  # checked as the friendly route checks it
        except (ValueError, KeyError, TypeError, ApiError):
            logger.warning(
                "example is not one example's named tensors; left out of the docs",
                extra={"example": key},
                exc_info=True,
            )
            continue
        infer = None
        if not requests:
            infer = {
                "inputs": [
                    {
                        "name": spec.name,
                        "shape": [1, *tensors[spec.name].shape],
                        "datatype": spec.datatype,
                        "data": tensors[spec.name].ravel().tolist(),
                    }
                    for spec in model.manifest.inputs
                ]
            }
        requests.append(
            ExampleRequest(
                key=key,
                summary=describe(example, examples, "example"),
                predict={"inputs": [named]},
                infer=infer,
            )
        )
    return requests


def grey_png(model: LoadedModel) -> str:
    from PIL import Image

    spec = model.manifest.preprocessing
    assert isinstance(spec, ImagePreprocessing)  # the adapter loaded, so the manifest says so
    buffer = io.BytesIO()
    Image.new("RGB", (spec.width, spec.height), (128, 128, 128)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def zero_tensors(model: LoadedModel) -> str:
    """One made-up example: zeros of each input's shape, 1 where a dimension may be any size."""
    return json.dumps(
        {
            spec.name: np.zeros(
                [d if d >= 0 else 1 for d in spec.shape[1:]], DATATYPES[spec.datatype][0]
            ).tolist()
            for spec in model.manifest.inputs
        }
    )


_CLASSIFIER = (ClassificationParameters, (Classification,))
TASK_DOCS: dict[str, TaskDocs] = {
    "image-classification": TaskDocs(*_CLASSIFIER, grey_png, image_requests),
    "text-classification": TaskDocs(
        *_CLASSIFIER, lambda _: "a truly wonderful film", text_requests
    ),
    "language-modeling": TaskDocs(
        LanguageModelParameters,
        (NextWords, TextScore, Continuation),
        lambda _: "the company said it expects",
        language_model_requests,
    ),
    "feature-extraction": TaskDocs(
        NoParameters, (Embedding,), lambda _: "a truly wonderful film", text_requests
    ),
    "tensor": TaskDocs(
        NoParameters,
        (TensorOutputs,),
        zero_tensors,
        tensor_requests,
        item_schema=lambda model: named_tensors_schema(
            model.manifest.inputs, "One example: each input's values, without the batch axis."
        ),
        output_schema=lambda model: named_tensors_schema(
            model.manifest.outputs, "One example's outputs: each output's row for it."
        ),
    ),
}


# --- the version's examples and its answers ------------------------------------------------------


def shipped_examples(model: LoadedModel) -> Examples | None:
    """The version's examples.json, or None if it has none (or an unreadable one: logged)."""
    manifest = model.manifest
    if EXAMPLES_FILE not in manifest.files:
        return None
    try:
        return parse_examples(read_verified(model.folder, manifest, EXAMPLES_FILE))
    except (ArtifactError, OSError):
        logger.warning("examples.json unreadable; the docs show generic examples", exc_info=True)
        return None


def answer_predict(model: LoadedModel, request: dict[str, Any]) -> dict[str, Any]:
    body = PredictRequest.model_validate(request)
    outputs = model.predict(body.inputs, body.parameters)
    response = PredictResponse(
        model=model.manifest.name,
        version=model.manifest.version,
        precision=model.precision,
        outputs=outputs,
    )
    return response.model_dump(mode="json")


def answer_infer(model: LoadedModel, request: dict[str, Any]) -> dict[str, Any]:
    response = run_inference(InferenceRequest.model_validate(request), model, b"")
    answer: dict[str, Any] = json.loads(bytes(response.body))
    return answer


def error_example(
    key: str, summary: str, request: dict[str, Any], run: Callable[[], Any]
) -> RouteExample:
    """The 400 body the route answers `request` with, from the code that answers it."""
    try:
        run()
    except ValidationError as exc:  # what the app's RequestValidationError handler describes
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        message = describe_validation_errors(errors)
    except ApiError as exc:
        message = exc.message
    else:
        raise AssertionError(f"the {key} example request was answered; it should fail")
    return RouteExample(key, summary, request, {"error": message})


def version_examples(model: LoadedModel) -> VersionExamples | None:
    """The examples of the loaded version, answered; None for a task without TASK_DOCS."""
    docs = TASK_DOCS.get(model.manifest.task)
    if docs is None:
        return None
    examples = shipped_examples(model) or Examples(
        dataset=GENERIC, examples=[Example(input=docs.generic(model), split=GENERIC, index=0)]
    )
    predict, infer = [], []
    for request in docs.requests(model, examples):
        try:
            predict.append(
                RouteExample(
                    request.key,
                    request.summary,
                    request.predict,
                    answer_predict(model, request.predict),
                )
            )
            if request.infer is not None:
                infer_request = {"id": request.key, **request.infer}
                answer = answer_infer(model, infer_request)
                infer.append(RouteExample(request.key, request.summary, infer_request, answer))
        except Exception:  # noqa: BLE001 - a failing example is left out of the docs, not the app
            logger.warning(
                "example left out of the docs", extra={"example": request.key}, exc_info=True
            )
    empty: dict[str, Any] = {"inputs": []}
    names = {spec.name for spec in model.task.signature()[0]}
    stranger = next(n for n in ("pixels", "pixels_", "pixels__") if n not in names)
    unknown = {"inputs": [{"name": stranger, "shape": [1], "datatype": "FP32", "data": [0.5]}]}
    return VersionExamples(
        source=GENERIC if examples.dataset == GENERIC else EXAMPLES_FILE,
        predict=predict,
        infer=infer,
        predict_error=error_example(
            "no-inputs",
            'a request with no inputs: {"inputs": []}',
            empty,
            lambda: PredictRequest.model_validate(empty),
        ),
        infer_error=error_example(
            "unknown-input",
            "a request with an input the model does not have",
            unknown,
            lambda: answer_infer(model, unknown),
        ),
    )
