"""`import_model`: an ONNX file, a torch module or a Hugging Face folder -> a checked artifact
folder, or a refusal.

Everything runs in a temporary folder: the source is read and exported, the graph opened in
onnxruntime, the examples read, the parity gate run and the budget checked; only then is the
version written under `out_dir`. A refusal (ImportRefused) therefore leaves nothing behind, and
publishing (modelfn.store.publish_artifact) is the caller's next step.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np

from importing.budget import check_budget
from importing.errors import ImportRefused
from importing.examples import UserExamples, image_examples, tensor_examples, text_examples
from importing.hf_tokenizer import SAMPLE_TEXTS, check_same_tokens
from importing.image_scheme import ImageOptions, preprocess_image, random_images
from importing.parity import GENERATED, Case, Feeds, generated_cases, parity_gate
from importing.source import Built, is_reference
from importing.tasks import SourceKind, check_label_count, check_options
from importing.text_options import TextOptions
from importing.writer import write_version
from modelfn.artifact import (
    CLASSIFIER_TASKS,
    EXAMPLES_FILE,
    ImagePreprocessing,
    ImportRecord,
    Scores,
    TensorSpec,
    is_model_name,
)
from modelfn.reference_stats import ReferenceStats, classifier_answers, reference_stats
from modelfn.registry import ServingEntry

Log = Callable[[str], None]


def import_model(
    source: str | Path,
    *,
    name: str,
    task: str,
    out_dir: Path,
    labels: Sequence[str] | None = None,
    scores: Scores | None = None,
    image: ImageOptions | None = None,
    weights: str | Path | None = None,
    factory_args: Mapping[str, Any] | None = None,
    inputs: Sequence[TensorSpec] | None = None,
    examples: Sequence[str | Path] = (),
    text: TextOptions | None = None,
    tolerance: float = 1e-4,
    opset: int | None = None,
    serving: ServingEntry | None = None,
    log: Log = print,
) -> Path:
    """Import `source` as model `name`; return the new version's folder `<out_dir>/<name>/<version>`.

    Parameters:
        source: an `.onnx` file, `package.module:callable` returning a torch nn.Module, or a
            Hugging Face folder (what save_pretrained writes: config.json, the weights, and
            tokenizer.json or preprocessor_config.json).
        task: one of modelfn.registry.IMPORTABLE_TASKS; text-classification and
            feature-extraction from a Hugging Face folder only.
        labels: class names in logit order (classifiers; a folder's id2label by default).
        scores: how a classifier's logits become its answered scores: "softmax" (one label per
            input), "sigmoid" (multi-label) or "logits" (as the graph returns them). Default: a
            folder's problem_type says (sigmoid for "multi_label_classification"), else softmax.
        image: the image scheme (image-classification from an ONNX file or a torch module;
            mean and std required). A folder's comes from its preprocessor_config.json.
        weights: the module's state dict, `.safetensors` or a `.pt`/`.pth` file (torch only).
        factory_args: keyword arguments for the factory (torch only), e.g. {"num_classes": 10}.
        inputs: a torch tensor model's inputs in forward's order, batch axis -1 (torch only).
        examples: image files (image-classification), `.txt` files of one text each (text
            tasks), `.npy` or `.json` files (tensor); the parity gate runs on them and they ship
            in examples.json. None: generated inputs.
        text: a folder's text options: max length, truncation, and a feature extractor's
            pooling and normalisation (default: TextOptions()).
        tolerance: the largest |reference - onnxruntime| accepted on any output.
        opset: the ONNX opset to export with (torch modules and folders; default: the
            exporter's).
        serving: the function's settings the budget is checked against (default: models.toml's
            defaults).
        log: receives progress lines and warnings.

    Raises:
        ImportRefused: anything the user can fix; the message says what. Nothing was written.

    Example:
        >>> import_model(  # doctest: +SKIP
        ...     "mypackage.models:resnet18", name="my-resnet", task="image-classification",
        ...     out_dir=Path("build/artifacts"), weights="resnet18.safetensors",
        ...     factory_args={"num_classes": 10}, labels=["airplane", ...],
        ...     image=ImageOptions(size=(32, 32), mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26)),
        ...     examples=["cat.png", "ship.png"])
        PosixPath('build/artifacts/my-resnet/20260101T120000Z-1a2b3c4d')
    """
    text_source = str(source)
    if not is_model_name(name):
        raise ImportRefused(
            f"name {name!r} is not a model name: lower-case letters and digits in words joined "
            "by single hyphens, at most 63 characters (e.g. my-resnet)"
        )
    kind = source_kind(text_source)
    labels = list(labels or [])
    check_options(task, labels, image, kind, text)
    if scores is not None and task not in CLASSIFIER_TASKS:
        raise ImportRefused(
            f"scores ({scores}) say how a classifier's logits are answered; a {task} model "
            "serves its outputs as they are: drop --scores"
        )
    if scores is not None and scores not in get_args(Scores):
        raise ImportRefused(f"scores must be one of {', '.join(get_args(Scores))}, got {scores!r}")
    if not (tolerance > 0 and math.isfinite(tolerance)):
        raise ImportRefused(f"tolerance must be a positive number, got {tolerance}")
    torch_only = {
        "weights": weights,
        "factory_args": factory_args,
        "inputs": inputs,
        "opset": opset,
    }
    exported = kind == "huggingface"  # a folder is exported too, so it takes an opset
    given = [k for k, v in torch_only.items() if v is not None and not (exported and k == "opset")]
    if given and kind != "torch-module":
        carries = (
            "an ONNX file carries its own weights and tensors"
            if kind == "onnx"
            else "a Hugging Face folder carries its own weights (model.safetensors or "
            "pytorch_model.bin), config and tensors"
        )
        raise ImportRefused(f"{', '.join(given)} apply to a torch module; {carries}: drop them")
    plan = _Plan(
        name=name,
        task=task,
        out_dir=out_dir,
        labels=labels,
        scores=scores,
        examples=[Path(p) for p in examples],
        tolerance=tolerance,
        options={
            "labels": labels,
            **({"scores": scores} if scores is not None else {}),
            **({"image": asdict(image)} if image is not None else {}),
            **({"text": asdict(text)} if text is not None else {}),
            **{k: _plain(v) for k, v in torch_only.items() if v is not None},
            "examples": [Path(p).name for p in examples],
        },
        serving=serving or ServingEntry(),
        log=log,
    )
    with tempfile.TemporaryDirectory(prefix="modelfn-import-") as tmp:
        work = Path(tmp) / "version"
        work.mkdir()
        if kind == "onnx":
            from importing import from_onnx

            built = from_onnx.build(Path(text_source), work, labels=labels, image=image)
        elif kind == "huggingface":
            from importing import from_huggingface  # torch and transformers: for folders only

            built = from_huggingface.build(
                Path(text_source),
                work,
                task=task,
                labels=labels,
                text=text or TextOptions(),
                opset=opset,
                log=log,
            )
        else:
            if weights is None:
                raise ImportRefused(
                    f"{text_source} needs its weights: --weights FILE (.safetensors, or a "
                    ".pt/.pth state dict); the artifact must hold trained weights, not the "
                    "factory's initial ones"
                )
            from importing import from_torch  # torch is imported for torch sources only

            built = from_torch.build(
                text_source,
                work,
                weights=Path(weights),
                factory_args=dict(factory_args or {}),
                labels=labels,
                image=image,
                inputs=inputs,
                opset=opset,
                log=log,
            )
        return _check_and_write(built, work, plan)


def source_kind(source: str) -> SourceKind:
    """What `source` names: a Hugging Face folder, an ONNX file, or a torch module's factory."""
    path = Path(source)
    if path.is_dir():
        return "huggingface"  # read_folder refuses a folder without config.json, saying so
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if is_reference(source):
        return "torch-module"
    raise ImportRefused(
        f"source {source!r} is neither a Hugging Face folder (save_pretrained's), an .onnx file "
        "nor package.module:callable (a function or class that returns a torch nn.Module)"
    )


@dataclass(frozen=True)
class _Plan:
    """What the caller asked for, checked: the parts every source shares."""

    name: str
    task: str
    out_dir: Path
    labels: list[str]
    scores: Scores | None  # as asked; None: the source's, else softmax
    examples: list[Path]
    tolerance: float
    options: dict[str, Any]  # ImportRecord.options, as given
    serving: ServingEntry
    log: Log


def _check_and_write(built: Built, work: Path, plan: _Plan) -> Path:
    """The steps every source shares: examples, parity, labels, budget, then the version."""
    user = _examples(plan.examples, built)
    cases = user.cases if user is not None else _generated(built)
    batch = None
    if built.text is not None:
        source = built.text
        if user is not None:  # the sample texts were checked before the export
            check_same_tokens(source, [(c.name, str(c.text)) for c in user.cases])

        def batch(rows: list[Case]) -> Feeds:
            return source.tokenizer.feeds(source.tokenizer.encode([str(c.text) for c in rows]))

    parity = parity_gate(built.session, cases, built.reference, plan.tolerance, plan.log, batch)
    outputs = built.outputs
    labels = built.labels if built.labels is not None else plan.labels
    if plan.task != "tensor":  # one score per label, or one embedding: declare the width
        width = int(built.session.run(None, cases[0].feeds)[0].shape[1])
        if plan.task != "feature-extraction":
            check_label_count(outputs[0], width, labels)
        # serving needs the output's width declared; every run above gave this one
        outputs = [outputs[0].model_copy(update={"shape": [-1, width]}), *outputs[1:]]
    if user is not None:
        (work / EXAMPLES_FILE).write_bytes(user.record.to_json())
    sizes = {p.name: p.stat().st_size for p in work.iterdir()}
    check_budget(sizes, plan.serving, plan.log)
    record = ImportRecord(
        source=built.source,  # type: ignore[arg-type]
        reference=built.reference_text,
        source_sha256=built.source_sha256,
        options={**plan.options, **built.options},
        parity=parity,
        parity_inputs="examples" if user is not None else "generated",
        tolerance=plan.tolerance,
        example_sha256=user.sha256 if user is not None else [],
    )
    scores = plan.scores or built.scores or "softmax"
    return write_version(
        work,
        plan.out_dir,
        name=plan.name,
        task=plan.task,
        version_file=built.version_file,
        packages=built.packages,
        inputs=built.inputs,
        outputs=outputs,
        labels=labels,
        scores=scores,
        preprocessing=built.preprocessing,
        imported=record,
        log=plan.log,
        reference=_reference(built, user, plan.task, labels, scores),
    )


def _reference(
    built: Built, user: UserExamples | None, task: str, labels: list[str], scores: Scores
) -> ReferenceStats | None:
    """The reference statistics of the user's examples, as the function will capture their like
    (modelfn/reference_stats.py): their features and, for a classifier, its answers on them.
    None without examples (generated inputs say nothing of the real ones) or for tensors."""
    if user is None or not user.features:
        return None
    predicted = confidence = None
    if task in ("image-classification", "text-classification"):
        logits = np.concatenate([built.session.run(None, c.feeds)[0] for c in user.cases])
        predicted, top = classifier_answers(logits, labels)
        # The best label is the highest logit whatever the scores; its softmax probability is
        # a confidence only where the model answers softmax scores.
        confidence = top if scores == "softmax" else None
    return reference_stats(
        user.features,
        data=f"the {len(user.features)} examples given to modelfn import",
        labels=labels or None,
        predicted=predicted,
        scores=confidence,
    )


def _examples(paths: list[Path], built: Built) -> UserExamples | None:
    if not paths:
        return None
    if built.text is not None:
        return text_examples(paths, built.text.tokenizer)
    if isinstance(built.preprocessing, ImagePreprocessing):
        return image_examples(paths, built.preprocessing, built.inputs[0].name)
    return tensor_examples(paths, built.inputs)


def _generated(built: Built) -> list[Case]:
    """Inputs for the parity gate when the user gave none: sample texts through the function's
    tokenizer, random images through the scheme, or random tensors of the declared shapes."""
    spec = built.preprocessing
    if built.text is not None:
        tokenizer = built.text.tokenizer
        cases = []
        for i, text in enumerate(SAMPLE_TEXTS):
            encoded = tokenizer.encode([text])
            if encoded.lengths[0] <= tokenizer.spec.max_length:  # else refused when served
                cases.append(
                    Case(name=f"sample text {i + 1}", feeds=tokenizer.feeds(encoded), text=text)
                )
        return cases
    if not isinstance(spec, ImagePreprocessing):
        return generated_cases(built.inputs)
    return [
        Case(
            name=f"generated image {i + 1}",
            feeds={built.inputs[0].name: preprocess_image(im, spec)},
        )
        for i, im in enumerate(random_images(spec, GENERATED))
    ]


def _plain(value: Any) -> Any:
    """An option as JSON for the import record: paths by file name, specs as dicts."""
    if isinstance(value, str | Path):
        return Path(value).name
    if isinstance(value, Sequence):
        return [v.model_dump() if isinstance(v, TensorSpec) else v for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value
