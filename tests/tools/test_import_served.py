"""An imported model, end to end as a user meets it: `modelfn import` a ResNet-18 (a plain
nn.Module with its safetensors weights, resize + centre crop declared) and an ONNX file (as
`tensor`), then the local deployment (moto S3, a function process per model, the gateway)
serves both beside nothing else, and their answers are torch's and onnxruntime's own.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from modelfn.artifact import EXAMPLES_FILE, parse_examples, read_manifest
from modelfn.images import fit, normalise
from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import LocalStore
from tests.support.import_sources import SmallCnn, export_onnx
from tests.support.resnet import resnet18
from tools.cli import main
from tools.local.deployment import LocalDeployment, local_deployment

CIFAR = REPO_ROOT.parent / "shared" / "data" / "cifar-10-batches-py"
LABELS = "airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck"


def cifar_images(count: int) -> list[Image.Image]:
    from training.data.cifar10 import load_cifar10

    test = load_cifar10(CIFAR).test
    # Upscaled, so the declared resize (shorter side 40) and centre crop (32) both act.
    return [
        Image.fromarray(test.images[i].transpose(1, 2, 0)).resize((48, 44), Image.BILINEAR)
        for i in range(count)
    ]


def png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(registry, store, resnet weights): both models imported by the CLI into a tmp store."""
    if not (CIFAR / "test_batch").is_file():
        pytest.skip(f"the CIFAR-10 sample is not at {CIFAR}")
    root = tmp_path_factory.mktemp("imported")
    registry = root / "models.toml"
    shutil.copy(REPO_ROOT / "models.toml", registry)
    patch = pytest.MonkeyPatch()
    patch.setenv("MODELFN_REGISTRY", str(registry))
    torch.manual_seed(0)
    weights = root / "resnet18.safetensors"
    save_file(resnet18(num_classes=10).state_dict(), str(weights))
    examples = []
    for i, image in enumerate(cifar_images(3)):
        image.save(root / f"example-{i}.png")
        examples.append(str(root / f"example-{i}.png"))
    store = root / "store"
    resnet = [
        "import", "tests.support.resnet:resnet18", "--weights", str(weights),
        "--factory-args", '{"num_classes": 10}', "--name", "my-resnet",
        "--task", "image-classification", "--labels", LABELS, "--image-size", "32",
        "--resize", "40", "--mean", "0.49,0.48,0.45", "--std", "0.25,0.24,0.26",
        "--examples", *examples, "--publish", str(store), "--out", str(root / "build"),
    ]  # fmt: skip
    assert main(resnet) == 0
    onnx_file = export_onnx(SmallCnn(), (torch.randn(2, 3, 8, 8),), root / "cnn.onnx", ["image"])
    example = root / "x.npy"
    np.save(example, np.random.default_rng(0).standard_normal((3, 8, 8)).astype(np.float32))
    tensors = [
        "import", str(onnx_file), "--name", "my-tensors", "--task", "tensor",
        "--examples", str(example), "--publish", str(store), "--out", str(root / "build"),
    ]  # fmt: skip
    assert main(tensors) == 0
    yield registry, store, weights
    patch.undo()


@pytest.fixture(scope="module")
def deployment(imported: tuple[Path, Path, Path]) -> Iterator[LocalDeployment]:
    registry, store, _ = imported
    patch = pytest.MonkeyPatch()
    patch.setenv("MODELFN_REGISTRY", str(registry))
    with local_deployment(
        load_registry(), LocalStore(store), models=["my-resnet", "my-tensors"]
    ) as running:
        yield running
    patch.undo()


def test_the_imported_resnet_answers_as_its_torch_module_does(
    imported: tuple[Path, Path, Path], deployment: LocalDeployment
) -> None:
    _, store, weights = imported
    images = cifar_images(5)
    reply = httpx.post(
        f"{deployment.url}/models/my-resnet/predict",
        json={"inputs": [png_b64(im) for im in images], "parameters": {"top_k": 3}},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    folder = next((store / "my-resnet").glob("2*"))
    spec = read_manifest(folder).preprocessing
    assert spec is not None and spec.kind == "image" and spec.resize == 40
    # The user's module and weights, fed by the scheme the manifest declares, in torch.
    module = resnet18(num_classes=10).eval()
    from safetensors.torch import load_file

    module.load_state_dict(load_file(str(weights)))
    x = normalise(np.stack([fit(im.convert("RGB"), spec) for im in images]), spec)
    with torch.no_grad():
        probabilities = torch.softmax(module(torch.from_numpy(x)), dim=1).numpy()
    labels = LABELS.split(",")
    for out, row in zip(body["outputs"], probabilities, strict=True):
        assert out["label"] == labels[int(row.argmax())]
        assert out["score"] == pytest.approx(float(row.max()), abs=1e-5)
    assert body["version"] == folder.name


def test_the_imported_tensor_model_answers_its_own_example(
    imported: tuple[Path, Path, Path], deployment: LocalDeployment
) -> None:
    _, store, _ = imported
    folder = next((store / "my-tensors").glob("2*"))
    example = parse_examples((folder / EXAMPLES_FILE).read_bytes()).examples[0]
    item = json.loads(example.input)  # one example, as the predict route takes it
    reply = httpx.post(
        f"{deployment.url}/models/my-tensors/predict", json={"inputs": [item, item]}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    outputs = reply.json()["outputs"]
    session = ort.InferenceSession(str(folder / "model.onnx"))
    (name,) = [o.name for o in session.get_outputs()]
    feeds = {k: np.asarray([v], dtype=np.float32) for k, v in item.items()}
    (want,) = session.run(None, feeds)
    for out in outputs:
        np.testing.assert_allclose(np.asarray(out[name]), want[0], atol=1e-5)
    # The same model over OIP, with the function's own metadata.
    meta = httpx.get(f"{deployment.url}/v2/models/my-tensors", timeout=30).json()
    assert [t["name"] for t in meta["inputs"]] == list(item)


def test_the_synth_deploys_an_imported_model_like_a_trained_one(
    imported: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from tests.infra.conftest import synthesize

    registry, _, _ = imported
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELFN_REGISTRY", str(registry))
        synth = synthesize(load_registry(), tmp_path)
    functions = synth.resources("AWS::Lambda::Function")
    names = json.dumps([f["Properties"].get("Environment") for f in functions.values()])
    assert '"MODELFN_MODEL": "my-resnet"' in names and '"MODELFN_MODEL": "my-tensors"' in names
    routes = [
        r["Properties"]["RouteKey"] for r in synth.resources("AWS::ApiGatewayV2::Route").values()
    ]
    assert (
        "POST /models/my-resnet/predict" in routes and "POST /v2/models/my-tensors/infer" in routes
    )
