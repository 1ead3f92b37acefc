"""An edge bundle of an imported model gives the function's inputs and answers.

The bundle's run.py replays the image scheme without modelfn (edge/standalone_runner.py); here
it is held equal to the function's (modelfn/images.py) on real CIFAR-10 test
images upscaled to 64x48 and 48x64, for each part of the scheme: resize + centre crop (and the
zero padding of a crop wider than the image), filters, scale, channel order and layout. Then a
whole bundle of an imported classifier (tests/support/imported.py) is exported, and its run.py,
run as a device runs it, answers a PNG as the Lambda handler does.

Hugging Face text models: the runner's tokenizer (tokenizer.json run by the `tokenizers`
library, `TokenizerJson`) gives modelfn/tokenizer_file.py's ids, masks and token types on all 560
real IMDB test reviews, truncated or whole, padded right or left, to the longest or to
max_length; then bundles of the imported BERT classifier and encoder (tests/conftest.py), scored
on the IMDB test CSV, answer reviews as the Lambda handler does.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from edge import parity
from edge.bundle import (
    INT8_GRAPH,
    REQUIREMENTS_FILE,
    RUNNER_FILE,
    SUMS_FILE,
    extract_bundle,
    read_bundle,
    verify_bundle,
)
from edge.export import TOKENIZER_REQUIREMENTS, ExportResult, export_bundle
from edge.standalone_runner import BundleError, TokenizerJson, fit_pixels, image_tensor, load_image
from functions.tasks.image_classification import preprocess
from modelfn.artifact import (
    ArtifactError,
    ImagePreprocessing,
    TokenizerInputs,
    TokenizerPreprocessing,
    sha256_bytes,
)
from modelfn.registry import REPO_ROOT, EdgeEntry, parse_registry
from modelfn.tokenizer_file import TokenizerFile
from tests.edge.conftest import IMDB_CSV, IMPORTED, IMPORTED_REVIEWS
from tests.edge.test_edge_bundle import runner_imports
from tests.functions.conftest import call, handler_for
from tests.modelfn.test_images import upscaled
from tests.support.hf_folders import MAX_LENGTH, imdb_texts
from tests.support.imported import write_image_classifier, write_tensor_model
from tests.support.manifests import CIFAR10_LABELS
from tests.support.text_models import SHARED_DATA
from tools.edge_test_data import user_test_data

BASE = ImagePreprocessing(
    height=32, width=32, resize=40, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)
)
SCHEMES = {
    "bilinear-crop": BASE,
    "bicubic-nhwc-bgr": BASE.model_copy(
        update={"interpolation": "bicubic", "layout": "NHWC", "channel_order": "BGR"}
    ),
    "nearest-oblong-crop": BASE.model_copy(
        update={"interpolation": "nearest", "height": 27, "width": 35, "resize": 36}
    ),
    "padded-crop": BASE.model_copy(update={"height": 32, "width": 44, "resize": 32}),
    "straight-scale": BASE.model_copy(
        update={"resize": None, "height": 24, "width": 28, "scale": 1 / 127.5, "mean": (1, 1, 1)}
    ),
}
REGISTRY = """
[models.imported-vision]
task = "image-classification"
imported = true
"""


@pytest.fixture(scope="module")
def cifar() -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8]]:
    """Real CIFAR-10 test images and labels, and training images to calibrate int8 on."""
    folder = SHARED_DATA / "cifar-10-batches-py"
    if not (folder / "test_batch").is_file():
        pytest.skip(f"CIFAR-10 not found in {folder}")
    from training.data.cifar10 import load_cifar10

    data = load_cifar10(folder)
    return (
        data.test.images[:100].transpose(0, 2, 3, 1),
        data.test.labels[:100],
        data.train.images[:64].transpose(0, 2, 3, 1),
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_runners_tensor_is_the_functions(
    cifar: tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8]], scheme: str
) -> None:
    spec = SCHEMES[scheme]
    images = cifar[0][:12]
    for size in ((64, 48), (48, 64)):
        pngs = upscaled(images, *size)
        function = preprocess([base64.b64encode(p).decode() for p in pngs], spec)
        runner = np.concatenate(
            [
                image_tensor(fit_pixels(load_image(p), spec.model_dump()), spec.model_dump())
                for p in pngs
            ]
        )
        assert runner.shape == function.shape and np.array_equal(runner, function), (scheme, size)
    # Pixel arrays (how the exporter scores test images) go through the same scheme.
    arrays = [np.asarray(p) for p in images]
    function = preprocess([a.tolist() for a in arrays], spec)
    runner = np.concatenate(
        [image_tensor(fit_pixels(a, spec.model_dump()), spec.model_dump()) for a in arrays]
    )
    assert np.array_equal(runner, function), scheme


def test_a_bundle_of_an_imported_classifier_answers_as_the_function(
    cifar: tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.uint8]], tmp_path: Path
) -> None:
    images, labels, calibration = cifar
    spec = SCHEMES["bicubic-nhwc-bgr"]
    folder, _ = write_image_classifier(tmp_path / "build", spec, CIFAR10_LABELS)
    entry = parse_registry(REGISTRY).get("imported-vision")
    data = parity.TestData(images=images, labels=labels, calibration=calibration)
    result = export_bundle(folder, tmp_path / "out", entry, data)
    assert result.manifest.preprocessing == spec and result.manifest.graphs.fp32
    bundle = extract_bundle(result.path, tmp_path / "device")
    png = tmp_path / "cat.png"
    png.write_bytes(upscaled(images[:1], 64, 48)[0])
    done = subprocess.run(
        [sys.executable, str(bundle / RUNNER_FILE), "--json", "--fp32", "--top-k", "3", str(png)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    device = json.loads(done.stdout)
    handler = handler_for(folder, tmp_path)
    body = {"inputs": [base64.b64encode(png.read_bytes()).decode()], "parameters": {"top_k": 3}}
    (served,) = call(handler, "POST", "/models/imported-vision/predict", body).json()["outputs"]
    assert [t["label"] for t in device["top_k"]] == [t["label"] for t in served["top_k"]]
    assert [t["score"] for t in device["top_k"]] == pytest.approx(
        [t["score"] for t in served["top_k"]], abs=1e-5
    )
    self_test = subprocess.run(
        [sys.executable, str(bundle / RUNNER_FILE), "--self-test"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert self_test.returncode == 0, self_test.stderr


def test_a_tensor_model_has_no_edge_bundle(tmp_path: Path) -> None:
    folder = write_tensor_model(tmp_path)
    entry = parse_registry(REGISTRY.replace("image-classification", "tensor")).get(
        "imported-vision"
    )
    with pytest.raises(ArtifactError, match="nothing it could feed the graph"):
        export_bundle(folder, tmp_path / "out", entry, parity.TestData())


# --- Hugging Face text models ----------------------------------------------------------------

INPUTS = TokenizerInputs(
    input_ids="input_ids", attention_mask="attention_mask", token_type_ids="token_type_ids"
)
TOKENIZER_SETTINGS: dict[str, dict[str, Any]] = {
    "truncated": {},
    # Whole reviews: a maximum no review reaches (the longest is over 4x the BERT's 128).
    "whole": {"truncation": False, "max_length": 100_000},
    "left-padded-left-cut": {"padding_side": "left", "truncation_side": "left"},
    "max-length-no-token-types": {
        "padding": "max_length",
        "inputs": TokenizerInputs(input_ids="ids", attention_mask="mask"),
    },
}
BATCH = 16  # reviews per padded batch, in file order


@pytest.fixture(scope="module")
def tokenizer_json(imdb_wordpiece: Any, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("wordpiece")
    imdb_wordpiece.save_pretrained(folder)
    return (folder / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("settings", TOKENIZER_SETTINGS)
def test_the_runners_token_ids_are_the_functions(tokenizer_json: bytes, settings: str) -> None:
    reviews = imdb_texts("test")
    assert len(reviews) == 560  # the whole test split of ../shared/data/imdb
    base: dict[str, Any] = {"max_length": MAX_LENGTH, "truncation": True, "pad_id": 0}
    spec = TokenizerPreprocessing(**(base | {"inputs": INPUTS} | TOKENIZER_SETTINGS[settings]))
    function = TokenizerFile(spec, tokenizer_json)
    # The runner reads the spec as the bundle's manifest.json holds it.
    runner = TokenizerJson(json.loads(spec.model_dump_json()), tokenizer_json.decode())
    want = function.encode(reviews)
    assert runner.encode(reviews) == list(zip(want.ids, want.type_ids, strict=True))
    if spec.truncation:
        assert sum(n == MAX_LENGTH for n in want.lengths) > 100  # many reviews were cut
    for start in range(0, len(reviews), BATCH):
        batch = reviews[start : start + BATCH]
        got, expected = runner.feeds(batch), function.feeds(function.encode(batch))
        assert sorted(got) == sorted(expected) == sorted(spec.inputs.names())
        for name, array in expected.items():
            assert got[name].dtype == np.int64
            np.testing.assert_array_equal(got[name], array, err_msg=f"{name} at {start}")


def test_the_runner_refuses_an_empty_text_or_one_over_the_maximum(
    tokenizer_json: bytes,
) -> None:
    spec = TokenizerPreprocessing(max_length=MAX_LENGTH, truncation=False, pad_id=0, inputs=INPUTS)
    runner = TokenizerJson(json.loads(spec.model_dump_json()), tokenizer_json.decode())
    review = max(imdb_texts("test")[:20], key=len)
    with pytest.raises(BundleError, match=r"tokens in '.*', over this model's maximum of 128"):
        runner.feeds(["a fine film", review])
    with pytest.raises(BundleError, match=r"an empty text; give at least one word"):
        runner.feeds(["a fine film", " \t"])


def run_py(bundle: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(bundle / RUNNER_FILE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tokenizers_pin_is_the_locks() -> None:
    lock = (REPO_ROOT / "requirements.lock").read_text()
    (pinned,) = [line.split()[0] for line in lock.splitlines() if line.startswith("tokenizers==")]
    assert TOKENIZER_REQUIREMENTS == [pinned]


def test_a_bundle_of_an_imported_text_classifier_answers_as_the_function(
    imported_text_bundle: ExportResult, imported_text_classifier: Path, tmp_path: Path
) -> None:
    edge, members = read_bundle(imported_text_bundle.path)
    # The version's tokenizer.json, byte for byte, listed in SHA256SUMS like every member.
    tokenizer = (imported_text_classifier / "tokenizer.json").read_bytes()
    assert members["tokenizer.json"] == tokenizer
    assert f"{sha256_bytes(tokenizer)}  tokenizer.json" in edge_sums(imported_text_bundle.path)
    requirements = members[REQUIREMENTS_FILE].decode().split()
    assert TOKENIZER_REQUIREMENTS[0] in requirements and not any(
        "pillow" in r for r in requirements
    )
    assert runner_imports(members[RUNNER_FILE]) <= {
        "numpy", "onnxruntime", "PIL", "tokenizers"
    } | sys.stdlib_module_names  # fmt: skip
    assert edge.preprocessing.kind == "tokenizer" and edge.quantization.mode == "dynamic"
    assert edge.test_data.startswith("your data: 560 texts from test.csv (sha256 ")
    assert edge.test_data.endswith(f"; {IMPORTED_REVIEWS} scored")
    assert edge.parity["test_examples"] == IMPORTED_REVIEWS
    assert {"fp32_accuracy", "int8_accuracy", "label_agreement"} <= set(edge.parity)
    # int8 ships where it is within the threshold, and says so.
    assert (INT8_GRAPH in members) == edge.quantization.shipped
    assert edge.quantization.shipped, edge.quantization.reason
    assert edge.quantization.reason.startswith("int8 is within the threshold: accuracy ")
    # The import's three example reviews are the self-test cases, answered by both graphs.
    assert len(edge.self_test) == 3 and all(
        set(c.expected) == {"fp32", "int8"} for c in edge.self_test
    )

    bundle = extract_bundle(imported_text_bundle.path, tmp_path / "device")
    reviews = imdb_texts("test")[200:203]
    device = [
        json.loads(line)
        for line in run_py(bundle, "--json", "--fp32", "--top-k", "2", *reviews).stdout.splitlines()
    ]
    handler = handler_for(imported_text_classifier, tmp_path)
    body = {"inputs": reviews, "parameters": {"top_k": 2}}
    served = call(handler, "POST", "/models/imdb-bert/predict", body).json()["outputs"]
    assert len(device) == len(served) == 3
    for mine, theirs in zip(device, served, strict=True):
        assert mine["precision"] == "fp32" and mine["label"] == theirs["label"]
        assert [t["score"] for t in mine["top_k"]] == pytest.approx(
            [t["score"] for t in theirs["top_k"]], abs=1e-5
        )
    # int8 by default; a text per stdin line; the self-test through verify-bundle.
    stdin = run_py(bundle, stdin="A truly wonderful film.\nDull, dull, dull.\n")
    assert stdin.returncode == 0, stdin.stderr
    assert [line.split(": ")[0] for line in stdin.stdout.splitlines()] == [
        "A truly wonderful film.", "Dull, dull, dull."
    ]  # fmt: skip
    _, report = verify_bundle(imported_text_bundle.path)
    assert report == "self-test (int8): 3/3 agree"


def edge_sums(path: Path) -> str:
    import tarfile

    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(f"/{SUMS_FILE}"))
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read().decode()


def test_a_bundle_of_an_imported_feature_extractor_embeds_as_the_function(
    imported_embedder_bundle: ExportResult, imported_embedder: Path, tmp_path: Path
) -> None:
    edge, members = read_bundle(imported_embedder_bundle.path)
    assert "tokenizer.json" in members and edge.labels == []
    assert TOKENIZER_REQUIREMENTS[0] in members[REQUIREMENTS_FILE].decode().split()
    figures = edge.parity
    assert figures["test_examples"] == IMPORTED_REVIEWS
    assert 0.99 < figures["cosine_min"] <= figures["cosine_mean"] <= 1
    assert 0.5 < figures["neighbour_agreement"] <= 1
    assert edge.quantization.shipped and "cosine_min" in edge.quantization.reason
    assert edge.quantization.threshold.endswith("at least 0.99")
    assert edge.test_data.endswith(f"; {IMPORTED_REVIEWS} embedded by both graphs")
    # No examples were imported: the first test reviews are the self-test cases.
    assert [c.input for c in edge.self_test] == [t.strip() for t in imdb_texts("test")[:3]]

    bundle = extract_bundle(imported_embedder_bundle.path, tmp_path / "device")
    texts = ["a truly wonderful film", imdb_texts("test")[300]]
    done = run_py(bundle, "--json", "--fp32", *texts)
    assert done.returncode == 0, done.stderr
    device = [json.loads(line)["embedding"] for line in done.stdout.splitlines()]
    handler = handler_for(imported_embedder, tmp_path)
    served = call(handler, "POST", "/models/imdb-embedder/predict", {"inputs": texts}).json()
    for mine, theirs in zip(device, served["outputs"], strict=True):
        assert len(mine) == 64
        np.testing.assert_allclose(mine, theirs["embedding"], atol=1e-5)
    int8 = run_py(bundle, "a truly wonderful film")
    assert int8.returncode == 0, int8.stderr
    assert int8.stdout.startswith("a truly wonderful film: [") and "(64 dimensions; --json" in (
        int8.stdout
    )
    _, report = verify_bundle(imported_embedder_bundle.path)
    assert report == "self-test (int8): 3/3 agree"


def test_a_self_test_embedding_that_moved_is_named(
    imported_embedder_bundle: ExportResult, tmp_path: Path
) -> None:
    """fp32 answers may move 1% of their length; int8 ones twice int8's own error more (another
    CPU's int8 kernels round otherwise), which the case's two recorded answers give."""
    from edge.standalone_runner import distance, open_bundle, self_test

    folder = extract_bundle(imported_embedder_bundle.path, tmp_path)
    for precision, share in (("fp32", 0.02), ("int8", 0.10)):
        bundle = open_bundle(folder, fp32=precision == "fp32")
        assert self_test(bundle) == []
        case = bundle.manifest["self_test"][0]
        fp32, int8 = (np.asarray(json.loads(case["expected"][p])) for p in ("fp32", "int8"))
        allowed = 0.01 if precision == "fp32" else 0.01 + 2 * distance(fp32, int8)
        assert precision == "fp32" or 0.01 < allowed < 0.05  # int8 errs here: 0.3-0.7%
        # This machine's answers moved by `share` of their length.
        bundle.embed = moved_by(bundle.embed, share)  # type: ignore[method-assign]
        problems = self_test(bundle)
        assert len(problems) == 3
        assert problems[0].endswith(
            f"embedding {share:.2%} of its length away from the one recorded at export, over "
            f"the {allowed:.2%} allowed"
        ), problems[0]


def moved_by(embed: Any, share: float) -> Any:
    """`embed`, its answers moved by `share` of their length, every component alike."""

    def moved(texts: list[str]) -> NDArray[np.float32]:
        vectors: NDArray[np.float32] = embed(texts)
        return vectors + share * np.linalg.norm(vectors) / np.sqrt(vectors.size)

    return moved


def test_int8_embeddings_under_the_threshold_ship_fp32_only(
    imported_embedder: Path, tmp_path: Path
) -> None:
    data = user_test_data(imported_embedder, IMDB_CSV, limit=20, text_column="review")
    entry = IMPORTED.get("imdb-embedder")
    result = export_bundle(
        imported_embedder, tmp_path, entry, data, limits=EdgeEntry(min_cosine_similarity=1.0)
    )
    edge, members = read_bundle(result.path)
    assert not edge.quantization.shipped and INT8_GRAPH not in members
    assert edge.graphs.int8 is None
    assert re.match(
        r"int8's embedding of test text \d+ \('.*'\) has cosine similarity 0\.\d{6} to "
        r"fp32's, under the limit of 1\.0$",
        edge.quantization.reason,
    ), edge.quantization.reason
    assert all(set(c.expected) == {"fp32"} for c in edge.self_test)
    assert verify_bundle(result.path)[1] == "self-test (fp32): 3/3 agree"
