"""`modelfn import --examples` records the examples' reference statistics (issue 23 item 5): the
features the function will capture of their like, and the classifier's answers on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from importing.api import import_model
from importing.image_scheme import preprocess_image
from modelfn.artifact import ONNX_FILE, read_manifest, verify_artifact
from modelfn.images import fit
from tests.importing.test_from_onnx import LABELS, SCHEME
from tests.support.import_sources import png


def test_image_examples_give_features_labels_and_confidence(
    tmp_path: Path, small_cnn_onnx: Path
) -> None:
    examples = [png(tmp_path / f"{i}.png", size=(20 + i, 12), seed=i) for i in range(3)]
    folder = import_model(small_cnn_onnx, name="small-cnn", task="image-classification",
                          out_dir=tmp_path / "out", labels=LABELS, image=SCHEME,
                          examples=examples)  # fmt: skip
    manifest = verify_artifact(folder)
    reference = manifest.reference
    assert reference is not None and reference.examples == 3
    assert "3 examples" in reference.data
    # Widths as sent, brightness over the pixels the graph sees (the scheme's size).
    assert reference.features["width"].quantiles[0] == 20
    assert reference.features["width"].quantiles[-1] == 22
    spec = manifest.preprocessing
    seen = [fit(Image.open(p).convert("RGB"), spec) for p in examples]  # type: ignore[arg-type]
    luma = [float((s.astype(np.float64) @ [0.299, 0.587, 0.114]).mean()) for s in seen]
    assert reference.features["brightness"].mean == float(f"{np.mean(luma):.6g}")
    # The graph's own answers on the examples, by label.
    session = ort.InferenceSession(str(folder / ONNX_FILE))
    name = session.get_inputs()[0].name
    images = [Image.open(p) for p in examples]
    best = [
        LABELS[int(session.run(None, {name: preprocess_image(i, spec)})[0].argmax())]  # type: ignore[arg-type]
        for i in images
    ]
    assert reference.labels == {label: best.count(label) for label in LABELS}
    assert reference.confidence is not None and sum(reference.confidence) == 3


def test_imported_text_examples_count_tokens_and_unknown_ones(
    imported_text_classifier: Path,
) -> None:
    from tokenizers import Tokenizer

    manifest = read_manifest(imported_text_classifier)
    reference = manifest.reference
    assert reference is not None and reference.examples == 3
    assert set(reference.features) == {"chars", "tokens", "oov_rate"}
    tokenizer = Tokenizer.from_file(str(imported_text_classifier / "tokenizer.json"))
    examples = json.loads((imported_text_classifier / "examples.json").read_text())["examples"]
    texts = [e["input"] for e in examples]
    tokenizer.no_truncation()
    spec = manifest.preprocessing
    assert spec is not None and spec.kind == "tokenizer" and spec.truncation
    # As the function counts them: what the graph is fed, cut at max_length.
    counts = [min(len(tokenizer.encode(t).ids), spec.max_length) for t in texts]
    assert reference.features["tokens"].quantiles[0] == min(counts)
    assert reference.features["tokens"].quantiles[-1] == max(counts)
    assert reference.features["chars"].mean == float(f"{np.mean([len(t) for t in texts]):.6g}")
    assert reference.labels is not None and sum(reference.labels.values()) == 3


def test_without_examples_there_is_no_reference(tmp_path: Path, small_cnn_onnx: Path) -> None:
    folder = import_model(small_cnn_onnx, name="small-cnn", task="image-classification",
                          out_dir=tmp_path / "out", labels=LABELS, image=SCHEME)  # fmt: skip
    manifest = read_manifest(folder)
    assert manifest.reference is None
    # And its manifest is written without the key, as before (older functions read it).
    assert "reference" not in json.loads((folder / "manifest.json").read_bytes())
