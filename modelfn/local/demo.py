"""`make demo`: the whole path on one machine, with real CIFAR-10 test images.

train (smoke preset) -> artifact -> publish to the local store -> seed the local S3 (moto server)
-> function process loads the model at init -> gateway -> HTTP requests -> predictions.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import open_store, publish_artifact

MODEL = "cifar10-cnn"
DOWNLOAD_DIR = REPO_ROOT / "build" / "data"  # only used where no data directory exists


def _data_root(explicit: str | None, data_subdir: str) -> Path:
    """The data root holding `data_subdir`; with nothing configured, download the official archive."""
    from training.data.cifar10 import download_cifar10
    from training.data.location import data_root_for

    try:
        return Path(data_root_for(explicit, data_subdir))
    except FileNotFoundError as exc:
        if explicit:
            raise
        print(f"{exc}\n-> downloading the official CIFAR-10 archive into {DOWNLOAD_DIR} (checksum verified)")
        return Path(download_cifar10(DOWNLOAD_DIR)).parent


def _png_base64(chw_uint8: object) -> str:
    from PIL import Image

    image = Image.fromarray(chw_uint8.transpose(1, 2, 0))  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def run_demo(
    *,
    images: int = 12,
    data: str | None = None,
    port: int = 0,
    epochs: int | None = None,
    store_uri: str | None = None,
    out_dir: Path | None = None,
) -> int:
    """Run the demo; `store_uri` and `out_dir` default to model_artifacts/ and build/artifacts/."""
    import httpx
    import numpy as np

    from modelfn.cli import BUILD_DIR
    from modelfn.local.deployment import local_deployment
    from training.data.cifar10 import load_cifar10
    from training.pipeline import train_model

    registry = load_registry()
    entry = registry.get(MODEL)
    data_root = _data_root(data, entry.data_subdir)
    t0 = time.perf_counter()
    print(f"== 1/4 train {MODEL} (preset smoke) on {data_root / entry.data_subdir}")
    folder = train_model(MODEL, data_dir=data_root, preset="smoke", epochs=epochs, out_dir=out_dir or BUILD_DIR)
    store = open_store(store_uri)
    manifest = publish_artifact(store, folder)
    print(f"published {manifest.name} {manifest.version} to {store.uri}")
    print(f"test accuracy on the {manifest.data.examples.get('test', '?')}-image test batch: "
          f"{manifest.metrics['accuracy']:.3f} (smoke preset, {manifest.training.epochs} epochs on "
          f"{manifest.data.examples.get('train', '?')} training images)")

    print("== 2/4 start the local deployment: moto S3 server, function process, HTTP gateway")
    with local_deployment(registry, store, port=port, models=[MODEL]) as deployment:
        fn = deployment.functions[MODEL]
        print(f"local S3 {deployment.s3_endpoint}: seeded {deployment.seeded_objects} objects into {deployment.store_uri}")
        print(f"function {MODEL}: init (download, sha256 check, onnxruntime load) {fn.init_ms:.0f} ms")
        print(f"gateway {deployment.url}")

        test = load_cifar10(data_root / entry.data_subdir).test
        # Spread the picks over the whole test batch so every class can appear.
        picks = np.linspace(0, len(test.labels) - 1, num=min(images, len(test.labels))).astype(int)
        names = manifest.labels

        with httpx.Client(base_url=deployment.url, timeout=30) as client:
            print(f"== 3/4 POST /models/{MODEL}/predict with {len(picks)} real test images as base64 PNG")
            body = {"inputs": [_png_base64(test.images[i]) for i in picks], "parameters": {"top_k": 3}}
            started = time.perf_counter()
            response = client.post(f"/models/{MODEL}/predict", json=body)
            elapsed_ms = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            outputs = response.json()["outputs"]
            print(f"HTTP {response.status_code} in {elapsed_ms:.0f} ms, model version {response.json()['version']}")
            print(f"  {'#':>4}  {'true label':<11} {'predicted':<11} {'score':>5}   top 3")
            hits = 0
            for i, out in zip(picks, outputs, strict=True):
                truth = names[int(test.labels[i])]
                hits += truth == out["label"]
                mark = "ok" if truth == out["label"] else "--"
                top = ", ".join(f"{t['label']} {t['score']:.2f}" for t in out["top_k"])
                print(f"  {i:>4}  {truth:<11} {out['label']:<11} {out['score']:.2f} {mark}  {top}")
            print(f"  {hits}/{len(picks)} correct")

            print(f"== 4/4 Open Inference Protocol v2: POST /v2/models/{MODEL}/infer (one image as a tensor)")
            # OIP clients send the graph's own input: the manifest's preprocessing, applied here with
            # the function's own code so the tensor is exactly what the predict route computes.
            from functions.tasks.image_classification import normalise

            x = normalise(test.images[picks[:1]].transpose(0, 2, 3, 1), manifest.preprocessing)
            request = {
                "id": "demo-1",
                "inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32", "data": x.ravel().tolist()}],
            }
            response = client.post(f"/v2/models/{MODEL}/infer", json=request)
            response.raise_for_status()
            result = response.json()
            logits = np.array(result["outputs"][0]["data"], dtype=np.float32)
            print(f"HTTP {response.status_code}: outputs[0] {result['outputs'][0]['name']} shape "
                  f"{result['outputs'][0]['shape']}, argmax -> {names[int(logits.argmax())]} "
                  f"(predict route said {outputs[0]['label']})")
            ready = client.get("/v2/health/ready")
            print(f"GET /v2/health/ready -> HTTP {ready.status_code}")
    print(f"== done in {time.perf_counter() - t0:.1f} s; everything shut down")
    return 0
