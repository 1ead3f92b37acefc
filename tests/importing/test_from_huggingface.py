"""A Hugging Face save_pretrained folder brought in: real architectures built from configs
(tests/support/hf_folders.py), exported with dynamic batch and sequence axes, checked against
torch and transformers, and the refusals that name what to change.

The imported versions are session fixtures (tests/conftest.py), shared with the serving tests:
a BERT classifier with its WordPiece tokenizer and three real IMDB test reviews as examples, a
BERT encoder as a feature extractor (mean pooling, L2-normalised), and a ViT with a CLIP-style
image processor.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from importing import ImageOptions, ImportRefused, TextOptions, import_model
from modelfn.artifact import (
    EXAMPLES_FILE,
    ONNX_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    ImagePreprocessing,
    TokenizerPreprocessing,
    parse_examples,
    read_manifest,
    sha256_file,
    verify_artifact,
)
from tests.support.hf_folders import (
    CIFAR_LABELS,
    CLIP_MEAN,
    CLIP_STD,
    LABELS,
    MAX_LENGTH,
    imdb_texts,
    import_quietly,
    processor,
)
from tests.support.import_sources import nothing_written


def refusal(tmp_path: Path, source: Path, task: str = "text-classification", **options: Any) -> str:
    out = tmp_path / "out"
    with pytest.raises(ImportRefused) as caught:
        import_model(source, name="refused", task=task, out_dir=out, log=lambda _: None, **options)
    assert nothing_written(out)
    return str(caught.value)


def copy_folder(source: Path, tmp_path: Path, **config_changes: Any) -> Path:
    """A copy of a save_pretrained folder, config.json changed as given."""
    folder = tmp_path / "copy"
    shutil.copytree(source, folder)
    if config_changes:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(config | config_changes))
    return folder


def padded_reviews(folder: Path, count: int) -> dict[str, np.ndarray]:
    """AutoTokenizer's padded batch of the first IMDB test reviews, truncated to MAX_LENGTH."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    batch = tokenizer(
        imdb_texts("test")[:count],
        padding=True,
        truncation=True,
        max_length=MAX_LENGTH,
        return_tensors="np",
    )
    return {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}


# --- text classification -------------------------------------------------------------------------


def test_a_text_classifier_becomes_a_version_with_its_tokenizer(
    imported_text_classifier: Path, hf_bert_classifier: Path
) -> None:
    manifest = verify_artifact(imported_text_classifier)
    assert manifest.task == "text-classification"
    assert manifest.labels == LABELS  # config.json's id2label
    assert sorted(manifest.files) == sorted(
        ["config.json", EXAMPLES_FILE, ONNX_FILE, TOKENIZER_FILE, WEIGHTS_FILE]
    )
    # tokenizer.json is the folder's file, byte for byte
    assert manifest.files[TOKENIZER_FILE].sha256 == sha256_file(hf_bert_classifier / TOKENIZER_FILE)
    spec = manifest.preprocessing
    assert isinstance(spec, TokenizerPreprocessing)
    assert (spec.max_length, spec.truncation, spec.padding_side, spec.pad_id) == (
        MAX_LENGTH,
        True,
        "right",
        0,
    )
    names = ["input_ids", "attention_mask", "token_type_ids"]
    assert spec.inputs.names() == names
    assert [(t.name, t.datatype, t.shape) for t in manifest.inputs] == [
        (n, "INT64", [-1, -1]) for n in names
    ]
    assert [(t.name, t.shape) for t in manifest.outputs] == [("logits", [-1, 2])]
    record = manifest.imported
    assert record is not None and record.source == "huggingface"
    assert record.parity_inputs == "examples" and record.parity["logits"] < 1e-5
    assert record.options["exporter"] == "dynamo"
    assert record.options["model"]["class"] == "BertForSequenceClassification"
    assert record.source_sha256["model.safetensors"] == sha256_file(
        hf_bert_classifier / "model.safetensors"
    )
    examples = parse_examples((imported_text_classifier / EXAMPLES_FILE).read_bytes())
    assert [e.input for e in examples.examples] == [t.strip() for t in imdb_texts("test")[:3]]


def test_the_graph_takes_padded_batches_of_any_length_and_answers_as_torch(
    imported_text_classifier: Path, hf_bert_classifier: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    session = ort.InferenceSession(str(imported_text_classifier / ONNX_FILE))
    model = AutoModelForSequenceClassification.from_pretrained(str(hf_bert_classifier)).eval()
    for count in (1, 5, 12):  # sequence lengths up to MAX_LENGTH, with padding
        feeds = padded_reviews(hf_bert_classifier, count)
        (got,) = session.run(None, feeds)
        with torch.no_grad():
            want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)


# --- feature extraction ----------------------------------------------------------------------------


def test_a_feature_extractor_pools_and_normalises_inside_the_graph(
    imported_embedder: Path, hf_bert_encoder: Path
) -> None:
    from transformers import AutoModel

    manifest = read_manifest(imported_embedder)
    assert manifest.task == "feature-extraction" and manifest.labels == []
    assert [(t.name, t.shape) for t in manifest.outputs] == [("sentence_embedding", [-1, 64])]
    assert manifest.imported is not None
    assert manifest.imported.parity_inputs == "generated"  # the sample texts
    assert manifest.imported.options | {"pooling": "mean", "normalize": True} == (
        manifest.imported.options
    )
    feeds = padded_reviews(hf_bert_encoder, 6)
    (got,) = ort.InferenceSession(str(imported_embedder / ONNX_FILE)).run(None, feeds)
    # the reference written out here: the attention-masked mean of the last hidden states
    model = AutoModel.from_pretrained(str(hf_bert_encoder)).eval()
    with torch.no_grad():
        hidden = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
    mask = feeds["attention_mask"][..., None]
    mean = (hidden.numpy() * mask).sum(axis=1) / mask.sum(axis=1)
    want = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_cls_pooling_from_pytorch_model_bin_weights(hf_bert_encoder: Path, tmp_path: Path) -> None:
    """The first token's vector, unnormalised, from a torch.save state dict: what older
    checkpoints hold, read by transformers with torch.load(weights_only=True)."""
    from transformers import AutoModel

    folder = copy_folder(hf_bert_encoder, tmp_path)
    model = AutoModel.from_pretrained(str(folder)).eval()
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    version = import_quietly(
        folder,
        tmp_path / "out",
        name="cls-embedder",
        task="feature-extraction",
        text=TextOptions(pooling="cls"),
    )
    record = read_manifest(version).imported
    assert record is not None and "pytorch_model.bin" in record.source_sha256
    feeds = padded_reviews(folder, 3)
    (got,) = ort.InferenceSession(str(version / ONNX_FILE)).run(None, feeds)
    with torch.no_grad():
        hidden = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
    np.testing.assert_allclose(got, hidden[:, 0].numpy(), atol=1e-5)


# --- image classification --------------------------------------------------------------------------


def test_an_image_classifier_takes_its_scheme_from_preprocessor_config(
    hf_vit: Path, tmp_path: Path
) -> None:
    version = import_quietly(hf_vit, tmp_path, name="cifar-vit", task="image-classification")
    manifest = verify_artifact(version)
    assert manifest.labels == CIFAR_LABELS
    assert manifest.preprocessing == ImagePreprocessing(
        height=32,
        width=32,
        resize=35,
        interpolation="bicubic",
        mean=tuple(CLIP_MEAN),  # type: ignore[arg-type]
        std=tuple(CLIP_STD),  # type: ignore[arg-type]
        crop_rounding="floor",  # a Hugging Face processor's crop
    )
    assert [(t.name, t.shape) for t in manifest.inputs] == [("pixel_values", [-1, 3, 32, 32])]
    assert [(t.name, t.shape) for t in manifest.outputs] == [("logits", [-1, 10])]
    assert manifest.imported is not None and manifest.imported.parity["logits"] < 1e-5
    assert "preprocessor_config.json" in manifest.imported.source_sha256


# --- refusals ----------------------------------------------------------------------------------------


def test_a_folder_without_config_json(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "has no config.json" in refusal(tmp_path, tmp_path / "empty")


def test_custom_code_is_never_imported(hf_bert_classifier: Path, tmp_path: Path) -> None:
    folder = copy_folder(hf_bert_classifier, tmp_path, auto_map={"AutoModel": "mine.MyModel"})
    assert "names custom code" in refusal(tmp_path, folder)


def test_a_text_task_without_a_tokenizer(hf_bert_classifier: Path, tmp_path: Path) -> None:
    folder = copy_folder(hf_bert_classifier, tmp_path)
    (folder / TOKENIZER_FILE).unlink()
    message = refusal(tmp_path, folder)
    assert "text-classification needs the model's tokenizer" in message
    assert "has no tokenizer.json" in message


def test_text_tasks_come_from_a_folder_only(tmp_path: Path) -> None:
    message = refusal(tmp_path, Path("model.onnx"))
    assert "text-classification imports from a Hugging Face folder" in message


def test_labels_that_do_not_match_id2label(hf_bert_classifier: Path, tmp_path: Path) -> None:
    message = refusal(tmp_path, hf_bert_classifier, labels=["bad", "good"])
    assert "do not match config.json's id2label (negative, positive)" in message
    message = refusal(tmp_path, hf_bert_classifier, labels=["a", "b", "c"])
    assert "3 labels were given but the model gives 2 scores" in message


def test_image_options_come_from_the_folder(hf_vit: Path, tmp_path: Path) -> None:
    options = ImageOptions(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    message = refusal(tmp_path, hf_vit, task="image-classification", image=options)
    assert "comes from its preprocessor_config.json" in message


def test_a_classifier_without_its_trained_head(hf_bert_encoder: Path, tmp_path: Path) -> None:
    message = refusal(tmp_path, hf_bert_encoder)
    assert "do not fit BertForSequenceClassification: missing classifier.bias" in message
    assert "a classifier needs its fine-tuned head" in message


def test_weights_of_another_size(hf_bert_classifier: Path, tmp_path: Path) -> None:
    folder = copy_folder(hf_bert_classifier, tmp_path, hidden_size=32, intermediate_size=64)
    message = refusal(tmp_path, folder)
    assert "wrong shape bert.embeddings.LayerNorm.bias (64,) (the config builds (32,))" in message


def test_a_pickled_module_in_pytorch_model_bin(hf_bert_classifier: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    folder = copy_folder(hf_bert_classifier, tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(str(folder))
    (folder / "model.safetensors").unlink()
    torch.save(model, folder / "pytorch_model.bin")  # the whole module, pickled
    message = refusal(tmp_path, folder)
    assert "holds pickled Python objects" in message and "BertForSequenceClassification" in message


def test_an_architecture_without_the_tasks_class(hf_bert_classifier: Path, tmp_path: Path) -> None:
    folder = copy_folder(hf_bert_classifier, tmp_path)
    processor().save_pretrained(folder)  # preprocessor_config.json, as an image model has
    message = refusal(tmp_path, folder, task="image-classification")
    assert (
        "config.json's BertForSequenceClassification (bert) has no image-classification class"
        in message
    )


def test_an_architecture_that_does_not_export(
    hf_bert_classifier: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unsupported operator aten::made_up")

    monkeypatch.setattr(torch.onnx, "export", fails)
    message = refusal(tmp_path, hf_bert_classifier)
    assert message.startswith("BertForSequenceClassification (bert) does not export to ONNX:")
    assert "aten::made_up" in message


def test_a_tokenizer_transformers_reads_otherwise(hf_bert_classifier: Path, tmp_path: Path) -> None:
    """tokenizer_config.json says do_lower_case false: transformers' BertTokenizer then rebuilds
    the normaliser without lower-casing, while tokenizer.json lower-cases. The function would
    give other ids than the model was trained with, so the import refuses."""
    folder = copy_folder(hf_bert_classifier, tmp_path)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps(settings | {"do_lower_case": False}))
    message = refusal(tmp_path, folder)
    assert "gives another input_ids than transformers' AutoTokenizer for sample text 1" in message


def test_a_max_length_longer_than_the_model_takes(hf_bert_classifier: Path, tmp_path: Path) -> None:
    message = refusal(tmp_path, hf_bert_classifier, text=TextOptions(max_length=512))
    assert "--max-length 512 is longer than" in message and "give at most 128" in message


def test_embedding_options_belong_to_feature_extraction(
    hf_bert_classifier: Path, tmp_path: Path
) -> None:
    message = refusal(tmp_path, hf_bert_classifier, text=TextOptions(normalize=True))
    assert "they belong to feature-extraction" in message


def test_a_small_bert_can_be_rebuilt_from_the_versions_files(
    imported_text_classifier: Path, hf_bert_classifier: Path, tmp_path: Path
) -> None:
    """config.json and model.safetensors of the version rebuild the model transformers loads."""
    from transformers import AutoModelForSequenceClassification

    rebuilt = AutoModelForSequenceClassification.from_pretrained(str(imported_text_classifier))
    original = AutoModelForSequenceClassification.from_pretrained(str(hf_bert_classifier))
    for (name, a), (_, b) in zip(
        rebuilt.state_dict().items(), original.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"weights": "w.safetensors"},
            "weights apply to a torch module; a Hugging Face folder carries its own weights",
        ),
        ({"task": "tensor"}, "a Hugging Face folder imports as text-classification, feature-"),
        ({"task": "feature-extraction", "labels": ["a", "b"]}, "feature-extraction has no labels"),
        ({"text": TextOptions(max_length=1)}, "max length 1: give at least 2 tokens"),
    ],
)
def test_options_a_folder_does_not_take(
    hf_bert_classifier: Path, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    options.setdefault("task", "text-classification")
    assert message in refusal(tmp_path, hf_bert_classifier, **options)
