"""Import a Hugging Face `save_pretrained` folder: build the model with transformers' own class for
the task, export it with dynamic batch (and sequence) axes, open the graph, and keep the module
as the parity gate's reference.

The graphs' tensors: a text model takes the tokenizer's int64 [batch, sequence] tensors under
their own names (input_ids, attention_mask, token_type_ids: what the tokenizer gives and the
model takes) and returns `logits` [batch, labels] (text-classification) or
`sentence_embedding` [batch, hidden] (feature-extraction, pooled inside the graph); an image classifier takes
`pixel_values` [batch, 3, H, W] and returns `logits`. The version keeps `tokenizer.json` (text),
`config.json` and the weights as `model.safetensors` beside the graph.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from numpy.typing import NDArray
from torch import nn

from importing.errors import ImportRefused
from importing.export import export_module
from importing.hf_folder import CONFIG_FILE, HfFolder, read_folder
from importing.hf_image import image_scheme
from importing.hf_models import (
    PixelLogits,
    TextEmbeddings,
    TextLogits,
    describe,
    forward_parameters,
    load_model,
)
from importing.hf_tokenizer import (
    SAMPLE_TEXTS,
    TextSource,
    check_same_tokens,
    sample_texts,
    text_source,
)
from importing.image_scheme import image_input_shape
from importing.parity import Feeds
from importing.session import graph_specs, open_session, require_dynamic_batch
from importing.source import ONNX_PACKAGES, Built
from importing.text_options import TextOptions
from modelfn.artifact import ONNX_FILE, TOKENIZER_FILE, WEIGHTS_FILE, TensorSpec

HF_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", *ONNX_PACKAGES)
GENERIC_LABEL = re.compile(r"^LABEL_\d+$")  # what transformers names classes nobody named


def build(
    path: Path,
    work: Path,
    *,
    task: str,
    labels: list[str],
    text: TextOptions,
    opset: int | None,
    log: Callable[[str], None],
) -> Built:
    folder = read_folder(path, task)
    model = load_model(folder, task)
    names = class_names(folder, task, labels, log)
    source: TextSource | None = None
    if task == "image-classification":
        assert folder.preprocessor is not None  # read_folder made sure
        preprocessing: Any = image_scheme(folder.preprocessor, folder.config)
        module: nn.Module = PixelLogits(model)
        declared = [
            TensorSpec(name="pixel_values", datatype="FP32", shape=image_input_shape(preprocessing))
        ]
        example: tuple[torch.Tensor, ...] = (
            torch.randn(2, *declared[0].shape[1:], generator=torch.Generator().manual_seed(0)),
        )
        shared = None
        output = "logits"
    else:
        source = text_source(
            folder,
            forward_parameters(model),
            max_length=text.max_length,
            truncation=text.truncation,
        )
        # Before the export: a tokenizer transformers reads otherwise is refused in seconds.
        check_same_tokens(source, sample_texts())
        preprocessing = source.tokenizer.spec
        inputs = preprocessing.inputs.names()
        declared = [TensorSpec(name=n, datatype="INT64", shape=[-1, -1]) for n in inputs]
        if task == "feature-extraction":
            module = TextEmbeddings(model, text.pooling, text.normalize)
            # Not "embedding": the exporter names the word-embedding lookup's value so, and two
            # values of one name make an invalid graph (onnxruntime refuses to load it).
            output = "sentence_embedding"
        else:
            module = TextLogits(model)
            output = "logits"
        # Two real texts of different lengths: a padded batch, so the mask is not all ones.
        feeds = source.tokenizer.feeds(source.tokenizer.encode(list(SAMPLE_TEXTS[:2])))
        example = tuple(torch.from_numpy(feeds[n]) for n in inputs)
        shared = {1: ("sequence", preprocessing.max_length)}
    try:
        exporter = export_module(
            module,
            example,
            work / ONNX_FILE,
            inputs=declared,
            output_names=[output],
            opset=opset,
            log=log,
            shared_axes=shared,
        )
    except ImportRefused as exc:
        raise ImportRefused(
            f"{folder.architecture} ({folder.config['model_type']}) does not export to ONNX: {exc}"
        ) from exc
    session = open_session(work / ONNX_FILE)
    graph_inputs, graph_outputs = graph_specs(session)
    require_dynamic_batch(graph_inputs)
    _write_files(folder, model, work)

    def run_torch(feeds: Feeds) -> list[NDArray[Any]]:
        tensors = tuple(torch.from_numpy(feeds[spec.name]) for spec in declared)
        with torch.no_grad():
            return [module(*tensors).numpy()]

    options: dict[str, Any] = {"exporter": exporter, "model": describe(model)}
    if source is not None:
        options |= {"max_length": preprocessing.max_length, "truncation": text.truncation}
    if task == "feature-extraction":
        options |= {"pooling": text.pooling, "normalize": text.normalize}
    # transformers trains a "multi_label_classification" head with a sigmoid per label, and
    # serves its pipeline with one: so does the function, unless the import says otherwise.
    multi_label = folder.config.get("problem_type") == "multi_label_classification"
    return Built(
        session=session,
        inputs=graph_inputs,
        outputs=graph_outputs,
        preprocessing=preprocessing,
        reference=run_torch,
        source="huggingface",
        reference_text=path.name,
        source_sha256=folder.sha256,
        version_file=WEIGHTS_FILE,
        packages=HF_PACKAGES,
        options=options,
        labels=names,
        text=source,
        scores="sigmoid" if multi_label and task != "feature-extraction" else None,
    )


def class_names(
    folder: HfFolder, task: str, given: Sequence[str], log: Callable[[str], None]
) -> list[str]:
    """A classifier's labels in logit order: config.json's id2label, or `given` where those are
    transformers' placeholders (LABEL_0, ...); ImportRefused where the two disagree."""
    if task == "feature-extraction":
        return []
    raw = folder.config.get("id2label") or {}
    try:
        id2label = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError) as exc:
        raise ImportRefused(f"config.json's id2label must map class ids to names: {exc}") from exc
    count = int(folder.config.get("num_labels", len(id2label)) or len(id2label))
    if sorted(id2label) != list(range(count)):
        raise ImportRefused(
            f"config.json's id2label names classes {sorted(id2label)}, not 0..{count - 1}; "
            "fix it to name every output once"
        )
    names = [id2label[i] for i in range(count)]
    placeholders = all(GENERIC_LABEL.fullmatch(n) for n in names)
    if given:
        if len(given) != count:
            raise ImportRefused(
                f"{len(given)} labels were given but the model gives {count} scores "
                f"(config.json's id2label: {', '.join(names)}); give one label per score"
            )
        if not placeholders and list(given) != names:
            raise ImportRefused(
                f"the labels given ({', '.join(given)}) do not match config.json's id2label "
                f"({', '.join(names)}); drop --labels to use the folder's, or fix id2label"
            )
        return list(given)
    if placeholders:
        log(
            f"warning: config.json names the classes {', '.join(names)} (transformers' "
            "placeholders); give --labels to serve their real names"
        )
    return names


def _write_files(folder: HfFolder, model: nn.Module, work: Path) -> None:
    """The version's files beside the graph: the weights as safetensors (never a pickle),
    config.json (with them, transformers rebuilds the model) and tokenizer.json (text)."""
    from safetensors.torch import save_model

    save_model(model, str(work / WEIGHTS_FILE))  # a tied tensor stored once
    shutil.copyfile(folder.path / CONFIG_FILE, work / CONFIG_FILE)
    if folder.tokenizer is not None:
        shutil.copyfile(folder.tokenizer, work / TOKENIZER_FILE)
