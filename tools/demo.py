"""`make demo`: the whole path on one machine, for the three registry models and one imported
model, on real test data.

train (smoke presets) -> artifacts -> publish to the local store -> import a model trained
elsewhere (here: cifar10-cnn's own ONNX graph, brought back in as `modelfn import` brings in an
ONNX file, with a resize + centre-crop scheme) -> seed the local S3 (moto server) -> a function
process per model loads its model at init -> gateway -> HTTP requests: CIFAR-10 test images (to
both image models), IMDB test reviews and Penn Treebank test sentences, each answer printed next
to the truth.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

from modelfn.registry import Registry, load_registry
from modelfn.store import open_store, publish_artifact
from tools.evaluate import png_base64
from tools.paths import BUILD_DIR, DEMO_IMAGE, DOWNLOAD_DIR, SERVE_PORT

IMAGE_MODEL, TEXT_MODEL, LANGUAGE_MODEL = "cifar10-cnn", "imdb-sentiment", "ptb-lstm"
MODELS = (IMAGE_MODEL, TEXT_MODEL, LANGUAGE_MODEL)
IMPORTED_MODEL = "cifar10-imported"  # registered in a copy of models.toml the demo writes
# The imported model's scheme: the shorter side to 32 pixels, then the centre 32x32, so photos of
# any size and shape fit the graph (torchvision's Resize(32) + CenterCrop(32)).
IMPORT_RESIZE, IMPORT_SIZE = 32, 32
QUERY_SIZE = (64, 48)  # the imported model's queries: test images upscaled to 4:3 "photos"
STEPS = 9
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
    build = out_dir or BUILD_DIR
    t0 = time.perf_counter()
    subdirs = {name: registry.get(name).trained().data_subdir for name in MODELS}
    roots = {IMAGE_MODEL: _cifar_root(data, subdirs[IMAGE_MODEL])}
    for name in (TEXT_MODEL, LANGUAGE_MODEL):
        roots[name] = data_root_for(data, subdirs[name])
    store = open_store(store_uri)
    manifests = {}
    folders = {}
    for step, name in enumerate(MODELS, start=1):
        print(f"== {step}/{STEPS} train {name} (preset {preset}) on {roots[name] / subdirs[name]}")
        folder = train_model(
            name, data_dir=roots[name], preset=preset, epochs=epochs, out_dir=build
        )
        assert folder is not None  # one process: this rank writes the artifact
        folders[name] = folder
        manifests[name] = publish_artifact(store, folder)
        print(f"published {name} {manifests[name].version} to {store.uri}")
    test_data = {name: load_data(registry.get(name), roots[name]) for name in MODELS}
    started = time.perf_counter()
    registry, manifests[IMPORTED_MODEL] = _import(
        folders[IMAGE_MODEL], manifests[IMAGE_MODEL], test_data[IMAGE_MODEL], store, build,
        demo_image.parent,
    )  # fmt: skip
    print(f"  imported, published and registered in {time.perf_counter() - started:.1f} s")

    print(
        f"== 5/{STEPS} start the local deployment: moto S3 server, a function process per model, HTTP gateway"
    )
    served = [*MODELS, IMPORTED_MODEL]
    with local_deployment(registry, store, port=port, models=served) as deployment:
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
            built_in = _images(
                client, manifests[IMAGE_MODEL], test_data[IMAGE_MODEL], images, demo_image
            )
            _imported_images(client, manifests[IMPORTED_MODEL], test_data[IMAGE_MODEL], built_in)
            _reviews(client, manifests[TEXT_MODEL], test_data[TEXT_MODEL], reviews)
            _sentences(client, manifests[LANGUAGE_MODEL], test_data[LANGUAGE_MODEL], sentences)
            ready = client.get("/v2/health/ready")
            print(f"GET /v2/health/ready -> HTTP {ready.status_code}")
            index = client.get(playground_url(deployment.url))
            print(f"GET / (the playground: each model's page and card) -> HTTP {index.status_code}")
    print(f"== done in {time.perf_counter() - t0:.1f} s; everything shut down")
    serve = "modelfn serve" + (f" --store {store.uri}" if store_uri else "")
    copy = demo_image.parent / "models.toml"
    print(
        f"{IMPORTED_MODEL} is registered in {copy} only (models.toml stays as it was): "
        f"MODELFN_REGISTRY={copy} {serve} serves it too"
    )
    print(
        f"try the models in a browser: {serve}, then open {playground_url(f'http://127.0.0.1:{SERVE_PORT}')}"
    )
    return 0


def _import(
    folder: Path, manifest: Any, data: Any, store: Any, build: Path, demo_dir: Path
) -> tuple[Registry, Any]:
    """cifar10-cnn's published graph imported as an ONNX file from elsewhere, with what
    `modelfn import` runs: `import_model` (the checks, the parity gate, the artifact),
    `publish_artifact` (alias latest), then the registry entry, appended to a copy of models.toml
    in `demo_dir` (the repository's own file stays as it is)."""
    from importing import ImageOptions, import_model
    from modelfn.registry import ServingEntry, registry_path
    from tools.models_toml import add_imported_entry

    pre = manifest.preprocessing
    examples = demo_dir / "import-examples"
    examples.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(3):  # three real test images as the user's examples, shipped in examples.json
        path = examples / f"test-{i}.png"
        path.write_bytes(_photo(data.test.images[i]))
        files.append(path)
    mean, std = ",".join(f"{v:.4f}" for v in pre.mean), ",".join(f"{v:.4f}" for v in pre.std)
    print(
        f"== 4/{STEPS} import {IMAGE_MODEL}'s ONNX graph as {IMPORTED_MODEL}, as you would import "
        f"a model trained elsewhere:\n  modelfn import {folder / 'model.onnx'} --name "
        f"{IMPORTED_MODEL} --task image-classification --labels {','.join(manifest.labels)} "
        f"--image-size {IMPORT_SIZE} --resize {IMPORT_RESIZE} --mean {mean} --std {std} "
        f"--examples {examples}/test-*.png"
    )
    imported = import_model(
        folder / "model.onnx",
        name=IMPORTED_MODEL,
        task="image-classification",
        out_dir=build,
        labels=manifest.labels,
        image=ImageOptions(
            size=(IMPORT_SIZE, IMPORT_SIZE), resize=IMPORT_RESIZE, mean=pre.mean, std=pre.std
        ),
        examples=files,
        log=lambda line: print(f"  {line}"),
    )
    published = publish_artifact(store, imported)
    print(f"  published {IMPORTED_MODEL} {published.version} to {store.uri} (aliases: latest)")
    copy = demo_dir / "models.toml"
    copy.write_text(registry_path().read_text(encoding="utf-8"), encoding="utf-8")
    if IMPORTED_MODEL not in load_registry(copy).models:  # a models.toml may have it already
        description = f"{IMAGE_MODEL}'s graph imported by make demo with a resize + crop scheme"
        add_imported_entry(
            copy, IMPORTED_MODEL, "image-classification", description, ServingEntry()
        )
    print(f"  added [models.{IMPORTED_MODEL}] to {copy}")
    return load_registry(copy), published


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


def _photo(chw_uint8: Any, size: tuple[int, int] = QUERY_SIZE) -> bytes:
    """A CIFAR-10 row as a PNG `size` (width, height) of another shape, as a phone photo is:
    upscaled with bicubic filtering, so the pixels stay smooth and real."""
    import base64

    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(png_base64(chw_uint8))))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return buffer.getvalue()


def _images(client: Any, manifest: Any, data: Any, count: int, demo_image: Path) -> dict[int, str]:
    import numpy as np

    from modelfn.images import normalise

    test = data.test
    # Spread the picks over the whole test batch so every class can appear.
    picks = np.linspace(0, len(test.labels) - 1, num=min(count, len(test.labels))).astype(int)
    names = manifest.labels
    print(
        f"== 6/{STEPS} {IMAGE_MODEL}: {len(picks)} real CIFAR-10 test images as base64 PNG "
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
    return {int(i): out["label"] for i, out in zip(picks, outputs, strict=True)}


def _imported_images(client: Any, manifest: Any, data: Any, built_in: dict[int, str]) -> None:
    """The same test images to the imported model, as photos of another size and shape: its
    scheme resizes the shorter side and crops the centre, so they reach the graph as 32x32."""
    import base64

    test = data.test
    names = manifest.labels
    width, height = QUERY_SIZE
    print(
        f"== 7/{STEPS} {IMPORTED_MODEL} (imported, {manifest.imported.source} file): the same "
        f"{len(built_in)} test images upscaled to {width}x{height} PNGs; its scheme resizes the "
        f"shorter side to {IMPORT_RESIZE} and crops the centre {IMPORT_SIZE}x{IMPORT_SIZE}"
    )
    photos = [base64.b64encode(_photo(test.images[i])).decode("ascii") for i in built_in]
    body = {"inputs": photos, "parameters": {"top_k": 3}}
    outputs = _post(client, f"/models/{IMPORTED_MODEL}/predict", body)["outputs"]
    print(f"  {'#':>5}  {'true label':<11} {'imported':<11} {'score':>5}   {IMAGE_MODEL} (32x32)")
    hits = same = 0
    for (i, theirs), out in zip(built_in.items(), outputs, strict=True):
        truth = names[int(test.labels[i])]
        hits += truth == out["label"]
        same += theirs == out["label"]
        print(
            f"  #{i:<4}  {truth:<11} {out['label']:<11} {out['score']:.2f} "
            f"{'ok' if truth == out['label'] else '--'}  {theirs}"
        )
    print(
        f"  {hits}/{len(outputs)} correct; {same}/{len(outputs)} the answer {IMAGE_MODEL} gave "
        "the 32x32 original (the crop cuts the sides of a 4:3 photo)"
    )


def _reviews(client: Any, manifest: Any, data: Any, count: int) -> None:
    test = data.test
    step = max(1, len(test) // count)
    picks = list(range(0, len(test), step))[:count]
    print(
        f"== 8/{STEPS} {TEXT_MODEL}: {len(picks)} real IMDB test reviews "
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
        f"== 9/{STEPS} {LANGUAGE_MODEL}: perplexity of the first {len(texts)} Penn Treebank test sentences, "
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
