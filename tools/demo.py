"""`make demo`: the whole path on one machine, for the three registry models, on real test data.

train (smoke presets) -> artifacts -> publish to the local store -> seed the local S3 (moto
server) -> a function process per model loads its model at init -> gateway -> HTTP requests:
CIFAR-10 test images, IMDB test reviews and Penn Treebank test sentences, each answer printed
next to the truth.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from modelfn.registry import load_registry
from modelfn.store import open_store, publish_artifact
from tools.evaluate import png_base64
from tools.paths import BUILD_DIR, DEMO_IMAGE, DOWNLOAD_DIR, SERVE_PORT

IMAGE_MODEL, TEXT_MODEL, LANGUAGE_MODEL = "cifar10-cnn", "imdb-sentiment", "ptb-lstm"
MODELS = (IMAGE_MODEL, TEXT_MODEL, LANGUAGE_MODEL)
PROMPT = "the company said"


def _cifar_root(explicit: str | None, data_subdir: str) -> Path:
    """The data root holding `data_subdir`; with nothing configured, download the official archive."""
    from training.data.cifar10 import download_cifar10
    from training.data.location import data_root_for

    try:
        return Path(data_root_for(explicit, data_subdir))
    except FileNotFoundError as exc:
        if explicit:
            raise
        print(
            f"{exc}\n-> downloading the official CIFAR-10 archive into {DOWNLOAD_DIR} (checksum verified)"
        )
        return Path(download_cifar10(DOWNLOAD_DIR)).parent


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.replace("<br />", " ").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def run_demo(
    *,
    images: int = 12,
    reviews: int = 8,
    sentences: int = 64,
    data: str | None = None,
    port: int = 0,
    epochs: int | None = None,
    store_uri: str | None = None,
    out_dir: Path | None = None,
    preset: str = "smoke",
    demo_image: Path = DEMO_IMAGE,
) -> int:
    """Run the demo; `store_uri` and `out_dir` default to model_artifacts/ and build/artifacts/.

    `preset` is the training preset of all three models (tests use `tiny`).
    """
    import httpx

    from tools.local.deployment import local_deployment
    from tools.local.playground import playground_url
    from training.data.location import data_root_for
    from training.pipeline import train_model
    from training.recipe import load_data

    registry = load_registry()
    t0 = time.perf_counter()
    subdirs = {name: registry.get(name).trained().data_subdir for name in MODELS}
    roots = {IMAGE_MODEL: _cifar_root(data, subdirs[IMAGE_MODEL])}
    for name in (TEXT_MODEL, LANGUAGE_MODEL):
        roots[name] = data_root_for(data, subdirs[name])
    store = open_store(store_uri)
    manifests = {}
    for step, name in enumerate(MODELS, start=1):
        print(f"== {step}/7 train {name} (preset {preset}) on {roots[name] / subdirs[name]}")
        folder = train_model(
            name, data_dir=roots[name], preset=preset, epochs=epochs, out_dir=out_dir or BUILD_DIR
        )
        assert folder is not None  # one process: this rank writes the artifact
        manifests[name] = publish_artifact(store, folder)
        print(f"published {name} {manifests[name].version} to {store.uri}")
    test_data = {name: load_data(registry.get(name), roots[name]) for name in MODELS}

    print(
        "== 4/7 start the local deployment: moto S3 server, a function process per model, HTTP gateway"
    )
    with local_deployment(registry, store, port=port, models=list(MODELS)) as deployment:
        print(
            f"local S3 {deployment.s3_endpoint}: seeded {deployment.seeded_objects} objects into {deployment.store_uri}"
        )
        for name, fn in deployment.functions.items():
            print(
                f"function {name}: init (download, sha256 checks, onnxruntime load) {fn.init_ms:.0f} ms; "
                f"its log (a JSON line per request, with EMF metrics): {fn.log_path}"
            )
        print(f"gateway {deployment.url}")
        with httpx.Client(base_url=deployment.url, timeout=60) as client:
            _images(client, manifests[IMAGE_MODEL], test_data[IMAGE_MODEL], images, demo_image)
            _reviews(client, manifests[TEXT_MODEL], test_data[TEXT_MODEL], reviews)
            _sentences(client, manifests[LANGUAGE_MODEL], test_data[LANGUAGE_MODEL], sentences)
            ready = client.get("/v2/health/ready")
            print(f"GET /v2/health/ready -> HTTP {ready.status_code}")
            index = client.get(playground_url(deployment.url))
            print(f"GET / (the playground: each model's page and card) -> HTTP {index.status_code}")
    print(f"== done in {time.perf_counter() - t0:.1f} s; everything shut down")
    serve = "modelfn serve" + (f" --store {store.uri}" if store_uri else "")
    print(
        f"try the models in a browser: {serve}, then open {playground_url(f'http://127.0.0.1:{SERVE_PORT}')}"
    )
    return 0


def _post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    response = client.post(path, json=body)
    response.raise_for_status()
    print(
        f"POST {path} -> HTTP {response.status_code} in {(time.perf_counter() - started) * 1000:.0f} ms"
    )
    result: dict[str, Any] = response.json()
    return result


def _write_demo_image(test: Any, names: list[str], path: Path) -> None:
    """The first test image of a cat (else the first image) as a PNG at `path` (DEMO_IMAGE: the
    README's curl example posts it)."""
    import base64

    cats = [i for i, label in enumerate(test.labels) if names[int(label)] == "cat"]
    index = cats[0] if cats else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(png_base64(test.images[index])))
    print(f"  wrote test image {index} ({names[int(test.labels[index])]}) to {path}")


def _images(client: Any, manifest: Any, data: Any, count: int, demo_image: Path) -> None:
    import numpy as np

    from modelfn.images import normalise

    test = data.test
    # Spread the picks over the whole test batch so every class can appear.
    picks = np.linspace(0, len(test.labels) - 1, num=min(count, len(test.labels))).astype(int)
    names = manifest.labels
    print(
        f"== 5/7 {IMAGE_MODEL}: {len(picks)} real CIFAR-10 test images as base64 PNG "
        f"(test accuracy {manifest.metrics['accuracy']:.3f}, preset {manifest.training.preset})"
    )
    body = {"inputs": [png_base64(test.images[i]) for i in picks], "parameters": {"top_k": 3}}
    outputs = _post(client, f"/models/{IMAGE_MODEL}/predict", body)["outputs"]
    print(f"  {'#':>4}  {'true label':<11} {'predicted':<11} {'score':>5}   top 3")
    hits = 0
    for i, out in zip(picks, outputs, strict=True):
        truth = names[int(test.labels[i])]
        hits += truth == out["label"]
        top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in out["top_k"])
        print(
            f"  {i:>4}  {truth:<11} {out['label']:<11} {out['score']:.2f} {'ok' if truth == out['label'] else '--'}  {top}"
        )
    print(f"  {hits}/{len(picks)} correct")
    _write_demo_image(test, names, demo_image)
    # OIP clients send the graph's own input: the manifest's preprocessing, applied here with the
    # function's own code so the tensor is exactly what the predict route computes.
    x = normalise(test.images[picks[:1]].transpose(0, 2, 3, 1), manifest.preprocessing)
    request = {
        "id": "demo-1",
        "inputs": [
            {
                "name": "input",
                "shape": [1, 3, 32, 32],
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ],
    }
    result = _post(client, f"/v2/models/{IMAGE_MODEL}/infer", request)
    logits = np.array(result["outputs"][0]["data"], dtype=np.float32)
    print(
        f"  OIP: outputs[0] {result['outputs'][0]['name']} shape {result['outputs'][0]['shape']}, "
        f"argmax -> {names[int(logits.argmax())]} (predict route said {outputs[0]['label']})"
    )


def _reviews(client: Any, manifest: Any, data: Any, count: int) -> None:
    test = data.test
    step = max(1, len(test) // count)
    picks = list(range(0, len(test), step))[:count]
    print(
        f"== 6/7 {TEXT_MODEL}: {len(picks)} real IMDB test reviews "
        f"(test accuracy {manifest.metrics['accuracy']:.3f}, preset {manifest.training.preset})"
    )
    body = {"inputs": [test.texts[i] for i in picks]}
    outputs = _post(client, f"/models/{TEXT_MODEL}/predict", body)["outputs"]
    hits = 0
    for i, out in zip(picks, outputs, strict=True):
        truth = data.label_names[int(test.labels[i])]
        hits += truth == out["label"]
        print(
            f"  {i:>4}  {truth:<8} {out['label']:<8} {out['score']:.2f} {'ok' if truth == out['label'] else '--'}  {_short(test.texts[i])}"
        )
    print(f"  {hits}/{len(picks)} correct")
    request = {
        "inputs": [
            {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["a truly wonderful film"]}
        ]
    }
    result = _post(client, f"/v2/models/{TEXT_MODEL}/infer", request)
    got = {o["name"]: o["data"] for o in result["outputs"]}
    print(f"  OIP BYTES: 'a truly wonderful film' -> {got['label'][0]} ({got['score'][0]:.2f})")


def _sentences(client: Any, manifest: Any, data: Any, count: int) -> None:
    texts = [" ".join(words) for words in data.test[:count]]
    print(
        f"== 7/7 {LANGUAGE_MODEL}: perplexity of the first {len(texts)} Penn Treebank test sentences, "
        f"next words and a continuation (test perplexity {manifest.metrics['test_perplexity']:.1f}, preset {manifest.training.preset})"
    )
    scores = _post(
        client,
        f"/models/{LANGUAGE_MODEL}/predict",
        {"inputs": texts, "parameters": {"mode": "score"}},
    )["outputs"]
    log_prob = sum(s["log_prob"] for s in scores)
    tokens = sum(s["token_count"] for s in scores)
    for text, score in list(zip(texts, scores, strict=True))[:3]:
        print(f"  perplexity {score['perplexity']:8.1f}  {_short(text)}")
    print(
        f"  the {len(texts)} sentences: {tokens} tokens, perplexity {math.exp(-log_prob / tokens):.1f}"
    )
    nxt = _post(
        client,
        f"/models/{LANGUAGE_MODEL}/predict",
        {"inputs": [PROMPT], "parameters": {"mode": "next", "top_k": 5}},
    )
    words = ", ".join(f"{w['word']} {w['probability']:.3f}" for w in nxt["outputs"][0]["next"])
    print(f"  next after '{PROMPT}': {words}")
    body = {
        "inputs": [PROMPT],
        "parameters": {"mode": "generate", "max_tokens": 12, "temperature": 0.8, "seed": 7},
    }
    generated = _post(client, f"/models/{LANGUAGE_MODEL}/predict", body)["outputs"][0]
    print(f"  generate (temperature 0.8, seed 7): {PROMPT} ... {generated['text']}")
