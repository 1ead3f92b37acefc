"""Each function's /openapi.json describes what it really answers, with real examples.

Real responses of every route (the friendly route for all three tasks and each language-model
mode, OIP inference as JSON and binary, metadata, health, and errors 400/404/415/503) come from
the Lambda handler with payload-2.0 events, and each is validated against the schema that the same
function's document gives for its route, status and content type. The examples in the documents
must validate too, and must be what the version answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mangum import Mangum
from openapi_spec_validator import validate as validate_spec

from functions.app import create_app
from functions.examples import TASK_DOCS
from functions.settings import FunctionSettings
from functions.tasks import ADAPTERS
from modelfn.api_routes import MODEL_ROUTES, SERVER_ROUTES
from modelfn.artifact import EXAMPLES_FILE, parse_examples, read_manifest
from modelfn.store import LocalStore
from tests.functions.conftest import Reply, build_tiny_model, call, handler_for

NOT_A_VERSION = "20200101T000000Z-00000000"


# --- validation against a document -------------------------------------------------------------


def validate(doc: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    """`instance` against `schema`, its $refs resolved in the document's components."""
    Draft202012Validator({**schema, "components": doc["components"]}).validate(instance)


def route_of(doc: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The document's path template that `path` matches (as the router would), and its operation."""
    for template, item in doc["paths"].items():
        want, got = template.split("/"), path.split("/")
        matches = len(want) == len(got) and all(
            w == g or (w.startswith("{") and w.endswith("}"))
            for w, g in zip(want, got, strict=True)
        )
        if matches and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the document")


class Checker:
    """One function's handler and its document; validates each reply and records the route."""

    def __init__(self, handler: Mangum) -> None:
        self.handler = handler
        reply = call(handler, "GET", "/openapi.json")
        assert reply.status == 200
        self.doc: dict[str, Any] = reply.json()
        validate_spec(self.doc)  # the document itself is valid OpenAPI 3.1
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        reply = call(self.handler, method, path, body, **kwargs)
        template, operation = route_of(self.doc, method, path)
        response = operation["responses"].get(str(reply.status))
        assert response is not None, (
            f"{method} {template} answered {reply.status}, which its document does not list: "
            f"{reply.body[:300]!r}"
        )
        content_type = reply.headers["content-type"].split(";")[0]
        assert content_type in response["content"], (template, reply.status, content_type)
        if content_type == "application/octet-stream":  # binary extension: validate the JSON header
            length = int(reply.headers["inference-header-content-length"])
            instance = json.loads(reply.body[:length])
            content_type = "application/json"
        else:
            instance = reply.json()
        validate(self.doc, response["content"][content_type]["schema"], instance)
        for header in response.get("headers", {}):
            if header.lower() != "inference-header-content-length":  # only on binary answers
                assert header.lower() in reply.headers, (template, reply.status, header)
                validate(
                    self.doc,
                    response["headers"][header]["schema"],
                    int(reply.headers[header.lower()]),
                )
        self.seen.add((method.upper(), template, reply.status))
        return reply

    def operations(self) -> set[tuple[str, str]]:
        return {(m.upper(), path) for path, item in self.doc["paths"].items() for m in item}


def every_example(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, value) for every example in the document."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if "example" in parameter:
                    yield f"{where} {parameter['name']}", parameter["schema"], parameter["example"]
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [
                (status, r.get("content", {})) for status, r in operation["responses"].items()
            ]
            for part, content in bodies:
                for media in content.values():
                    if "example" in media:
                        yield f"{where} {part}", media["schema"], media["example"]
                    for key, example in media.get("examples", {}).items():
                        yield f"{where} {part} {key}", media["schema"], example["value"]
    for name, schema in doc["components"]["schemas"].items():
        for i, value in enumerate(schema.get("examples", [])):
            yield f"components {name} [{i}]", {"$ref": f"#/components/schemas/{name}"}, value


def check_examples(doc: dict[str, Any]) -> int:
    count = 0
    for where, schema, value in every_example(doc):
        try:
            validate(doc, schema, value)
        except Exception as exc:
            raise AssertionError(f"example {where} does not fit its schema: {exc}") from exc
        count += 1
    return count


# --- the functions ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cifar(cifar_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Checker:
    return Checker(handler_for(cifar_artifact, tmp_path_factory.mktemp("cifar")))


@pytest.fixture(scope="module")
def imdb(imdb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Checker:
    return Checker(handler_for(imdb_artifact, tmp_path_factory.mktemp("imdb")))


@pytest.fixture(scope="module")
def ptb(ptb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Checker:
    return Checker(handler_for(ptb_artifact, tmp_path_factory.mktemp("ptb")))


@pytest.fixture(scope="module")
def unloaded(tmp_path_factory: pytest.TempPathFactory) -> Checker:
    """A function whose model is not published: its model routes answer 503."""
    root = tmp_path_factory.mktemp("unloaded")
    store = LocalStore(root / "store")
    store.root.mkdir(parents=True)
    settings = FunctionSettings(
        model="cifar10-cnn", store_uri=str(store.root), cache_dir=root / "cache", load_retry_s=60
    )
    return Checker(Mangum(create_app(settings), lifespan="off"))


def shipped(folder: Path) -> list[str]:
    return [e.input for e in parse_examples((folder / EXAMPLES_FILE).read_bytes()).examples]


def text_tensor(text: str) -> dict[str, Any]:
    return {"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}


def test_image_function_answers_as_documented(cifar: Checker, cifar_artifact: Path) -> None:
    name, version = "cifar10-cnn", read_manifest(cifar_artifact).version
    image = shipped(cifar_artifact)[0]
    reply = cifar(
        "POST", f"/models/{name}/predict", {"inputs": [image], "parameters": {"top_k": 2}}
    )
    assert reply.status == 200 and len(reply.json()["outputs"][0]["top_k"]) == 2
    tensor = {"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": [0.1] * 3072}
    for path in (f"/v2/models/{name}/infer", f"/v2/models/{name}/versions/{version}/infer"):
        assert cifar("POST", path, {"inputs": [tensor]}).status == 200
    binary = cifar(
        "POST",
        f"/v2/models/{name}/infer",
        {"inputs": [tensor], "parameters": {"binary_data_output": True}},
    )
    assert binary.headers["content-type"] == "application/octet-stream"
    for path in (
        "/v2",
        f"/v2/models/{name}",
        f"/v2/models/{name}/versions/{version}",
        f"/v2/models/{name}/ready",
        f"/v2/models/{name}/versions/{version}/ready",
        "/v2/health/live",
        "/v2/health/ready",
    ):
        assert cifar("GET", path).status == 200, path
    # Errors: each one the document lists for its route.
    assert cifar("POST", f"/models/{name}/predict", {"inputs": []}).status == 400
    assert cifar("POST", f"/models/{name}/predict", {"inputs": ["not base64!"]}).status == 400
    unknown = {"inputs": [{**tensor, "name": "pixels"}]}
    assert cifar("POST", f"/v2/models/{name}/infer", unknown).status == 400
    assert cifar("POST", "/models/other/predict", {"inputs": [image]}).status == 404
    assert cifar("GET", f"/v2/models/{name}/versions/{NOT_A_VERSION}").status == 404
    assert cifar("GET", f"/v2/models/{name}/versions/{NOT_A_VERSION}/ready").status == 404
    gzip = {"content-encoding": "gzip"}
    assert cifar("POST", f"/models/{name}/predict", {"inputs": [image]}, headers=gzip).status == 415
    # OpenAI's embeddings route is every function's (the route list has no per-task routes); an
    # image classifier answers it 404, in OpenAI's error shape, as its document says.
    embeddings = ("POST", "/models/{name}/v1/embeddings")
    assert (
        cifar(embeddings[0], f"/models/{name}/v1/embeddings", {"model": name, "input": "x"}).status
        == 404
    )
    # Every other route of the document has been answered with a 200 and checked.
    assert {(m, t) for m, t, s in cifar.seen if s == 200} == cifar.operations() - {embeddings}


def test_text_classifier_answers_as_documented(imdb: Checker, imdb_artifact: Path) -> None:
    review = shipped(imdb_artifact)[0]
    reply = imdb("POST", "/models/imdb-sentiment/predict", {"inputs": [review]})
    assert reply.json()["outputs"][0]["label"] in ("negative", "positive")
    reply = imdb("POST", "/v2/models/imdb-sentiment/infer", {"inputs": [text_tensor(review)]})
    assert [o["name"] for o in reply.json()["outputs"]] == ["label", "score", "probabilities"]
    assert imdb("POST", "/models/imdb-sentiment/predict", {"inputs": [""]}).status == 400
    bad = {"inputs": [text_tensor(review)], "parameters": {"top_k": 1}}
    assert imdb("POST", "/v2/models/imdb-sentiment/infer", bad).status == 400


@pytest.mark.parametrize(
    "parameters",
    [
        {"mode": "next", "top_k": 3},
        {"mode": "score"},
        {"mode": "generate", "max_tokens": 5, "seed": 1},
    ],
)
def test_language_model_answers_each_mode_as_documented(
    ptb: Checker, ptb_artifact: Path, parameters: dict[str, Any]
) -> None:
    sentence = shipped(ptb_artifact)[0]
    body = {"inputs": [sentence], "parameters": parameters}
    assert ptb("POST", "/models/ptb-lstm/predict", body).status == 200
    oip = {"inputs": [text_tensor(sentence)], "parameters": parameters}
    assert ptb("POST", "/v2/models/ptb-lstm/infer", oip).status == 200


def test_the_language_model_documents_only_its_own_outputs(ptb: Checker) -> None:
    schemas = ptb.doc["components"]["schemas"]
    outputs = schemas["PredictResponse-language-modeling"]["properties"]["outputs"]["items"]
    assert [ref["$ref"].rsplit("/", 1)[1] for ref in outputs["anyOf"]] == [
        "NextWords",
        "TextScore",
        "Continuation",
    ]
    parameters = schemas["PredictRequest-language-modeling"]["properties"]["parameters"]
    assert parameters["$ref"].endswith("/LanguageModelParameters")
    # A classification is not a language model's answer: the schema refuses it.
    classification = {"label": "a", "score": 1.0, "top_k": [{"label": "a", "score": 1.0}]}
    with pytest.raises(Exception, match="is not valid"):
        validate(
            ptb.doc,
            {"$ref": "#/components/schemas/PredictResponse-language-modeling"},
            {"model": "ptb-lstm", "version": "v", "outputs": [classification]},
        )


def test_an_unloaded_model_answers_503_with_retry_after_as_documented(unloaded: Checker) -> None:
    tensor = {"name": "input", "shape": [1], "datatype": "FP32", "data": [0.0]}
    for method, path, body in (
        ("GET", "/v2/health/ready", None),
        ("GET", "/v2/models/cifar10-cnn", None),
        ("GET", "/v2/models/cifar10-cnn/ready", None),
        ("POST", "/models/cifar10-cnn/predict", {"inputs": ["a"]}),
        ("POST", "/v2/models/cifar10-cnn/infer", {"inputs": [tensor]}),
    ):
        reply = unloaded(method, path, body)
        assert reply.status == 503 and int(reply.headers["retry-after"]) >= 1
    assert unloaded("GET", "/v2/health/live").status == 200
    assert "This function serves" not in unloaded.doc["info"]["description"]


# --- the documents -----------------------------------------------------------------------------


def test_no_route_documents_fastapis_422_which_is_a_400_here(cifar: Checker) -> None:
    for path, item in cifar.doc["paths"].items():
        for method, operation in item.items():
            assert "422" not in operation["responses"], (method, path)
    assert "HTTPValidationError" not in cifar.doc["components"]["schemas"]


def test_the_documents_paths_are_the_routes_the_api_sends_a_function(cifar: Checker) -> None:
    routes = {(r.method, r.path) for r in (*MODEL_ROUTES, *SERVER_ROUTES)}
    assert cifar.operations() == routes


@pytest.mark.parametrize("fixture", ["cifar", "imdb", "ptb", "unloaded"])
def test_every_example_fits_its_schema(fixture: str, request: pytest.FixtureRequest) -> None:
    checker: Checker = request.getfixturevalue(fixture)
    assert check_examples(checker.doc) >= (4 if fixture == "unloaded" else 10)


@pytest.mark.parametrize(
    ("fixture", "artifact"),
    [("cifar", "cifar_artifact"), ("imdb", "imdb_artifact"), ("ptb", "ptb_artifact")],
)
def test_examples_are_the_versions_own_and_its_real_answers(
    fixture: str, artifact: str, request: pytest.FixtureRequest
) -> None:
    checker: Checker = request.getfixturevalue(fixture)
    folder: Path = request.getfixturevalue(artifact)
    manifest = read_manifest(folder)
    predict = checker.doc["paths"]["/models/{name}/predict"]["post"]
    requests = predict["requestBody"]["content"]["application/json"]["examples"]
    answers = predict["responses"]["200"]["content"]["application/json"]["examples"]
    assert requests.keys() == answers.keys() and requests
    inputs = shipped(folder)
    for key, example in requests.items():
        (text,) = example["value"]["inputs"]
        # The shipped input itself, or (language model prompts) its opening words.
        assert any(given == text or given.startswith(text) for given in inputs), key
        # Asked again, the function gives the documented answer (generation: a fixed seed).
        reply = call(checker.handler, "POST", f"/models/{manifest.name}/predict", example["value"])
        assert reply.json() == answers[key]["value"], key
    infer = checker.doc["paths"]["/v2/models/{name}/infer"]["post"]
    for key, example in infer["requestBody"]["content"]["application/json"]["examples"].items():
        reply = call(checker.handler, "POST", f"/v2/models/{manifest.name}/infer", example["value"])
        documented = infer["responses"]["200"]["content"]["application/json"]["examples"][key]
        assert reply.json() == documented["value"], key
    error = infer["responses"]["400"]["content"]["application/json"]["examples"]["unknown-input"]
    assert "the model has no input 'pixels'" in error["value"]["error"]
    assert f"version `{manifest.version}`" in checker.doc["info"]["description"]
    assert "held-out data" in checker.doc["info"]["description"]


def test_language_model_examples_show_every_mode(ptb: Checker) -> None:
    predict = ptb.doc["paths"]["/models/{name}/predict"]["post"]
    examples = predict["requestBody"]["content"]["application/json"]["examples"]
    assert [e["value"]["parameters"]["mode"] for e in examples.values()] == [
        "next",
        "score",
        "generate",
    ]
    assert all("ptb test sentence" in e["summary"] for e in examples.values())


def test_path_parameters_show_the_served_name_and_version(
    cifar: Checker, cifar_artifact: Path
) -> None:
    operation = cifar.doc["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    shown = {p["name"]: p.get("example") for p in operation["parameters"] if p["in"] == "path"}
    assert shown == {"name": "cifar10-cnn", "version": read_manifest(cifar_artifact).version}


def test_a_version_without_examples_documents_made_up_ones(tmp_path: Path) -> None:
    tiny = build_tiny_model(tmp_path / "build")  # an artifact with no examples.json
    checker = Checker(handler_for(tiny.folder, tmp_path))
    assert "made up" in checker.doc["info"]["description"]
    predict = checker.doc["paths"]["/models/{name}/predict"]["post"]
    (example,) = predict["requestBody"]["content"]["application/json"]["examples"].values()
    assert "ships no examples.json" in example["summary"]
    check_examples(checker.doc)


def test_a_tampered_examples_file_is_not_shown(cifar_artifact: Path, tmp_path: Path) -> None:
    handler = handler_for(cifar_artifact, tmp_path)
    version = read_manifest(cifar_artifact).version
    (cached,) = (tmp_path / "cache").rglob(f"{version}/{EXAMPLES_FILE}")
    cached.write_bytes(cached.read_bytes().replace(b'"index": ', b'"index":  '))
    doc = call(handler, "GET", "/openapi.json").json()
    assert "made up" in doc["info"]["description"]


def test_every_task_has_its_docs() -> None:
    assert set(TASK_DOCS) == set(ADAPTERS)
