"""The artifact contract: what a published model version is, byte for byte.

Every layer imports this module and nothing re-implements it. An artifact is the folder
`<model>/<version>/` holding

- `model.safetensors`: the trained weights (never a pickle), enough with `manifest.architecture`
  to rebuild the torch module;
- `model.onnx`: the ONNX graph the functions serve with onnxruntime; a graph over
  `EXTERNAL_DATA_THRESHOLD` keeps its weights beside it in `model.onnx.data` (ONNX external data),
  a file of the version like any other (`graph_files`);
- `model.int8.onnx` (optional): the same graph quantized to int8 and scored against it, what a
  function with `serving.precision = "int8"` serves instead (`Manifest.quantization` says how it
  was made and what it lost);
- `vocab.json` (text models): the vocabulary, a JSON list of tokens whose index is the token id;
- `tokenizer.json` (text models imported from Hugging Face): the tokenizer, as data;
- `examples.json` (optional): a few real held-out inputs (`Examples`), as the friendly route takes
  them, for the API documentation and pages that show the model at work;
- `manifest.json`: a `Manifest`, with the sha256 of every other file.

Versions are immutable. An alias (`<model>/aliases/<alias>.json`, an `Alias`) points at one
version and carries the manifest's own sha256, so a reader goes alias -> manifest -> files and
checks each hop; the alias is written last, so a half-published version is never served.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import shutil
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelfn.reference_stats import ReferenceStats

SCHEMA_VERSION: Final = 1
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
# A graph larger than EXTERNAL_DATA_THRESHOLD bytes as one file is written as ONNX_FILE plus its
# weights in ONNX_DATA_FILE (ONNX external data, every tensor's `location` naming this file).
# protobuf cannot serialise a message over 2 GiB, so one file cannot hold a larger model; and
# onnxruntime memory-maps external initializers (onnxruntime PRs 11127, 11789) where it copies
# the ones inside a graph it is handed: measured here on 512 MiB of weights, the function's
# session peaks at 3.0x the weights' size from one file and 1.05x with external data
# (`python -m bench.graph_rss`, docs/serving.md "Large graphs"). Up to 128 MiB a one-file graph's
# extra copies stay under about 256 MiB and it keeps the optimised-graph cache, which
# functions/onnx_session.py skips for external data; every graph of today's models (a few MB,
# ResNet-18's 45 MB) stays one file. Tests set it lower; modelfn.onnx_graph.save_graph is the
# one writer that reads it.
ONNX_DATA_FILE = "model.onnx.data"
EXTERNAL_DATA_THRESHOLD = 128 << 20
VOCAB_FILE = "vocab.json"
# A Hugging Face `tokenizers` tokenizer, as its library saves it (`TokenizerPreprocessing`).
TOKENIZER_FILE = "tokenizer.json"
EXAMPLES_FILE = "examples.json"
MANIFEST_FILE = "manifest.json"
# The int8 graph (issue 22): quantized from ONNX_FILE by the edge exporter's code and scored
# against it under the registry's threshold before it became a file of the version. Always one
# file: the quantizer reads and writes whole graphs, so a graph with external data gets none.
INT8_ONNX_FILE = "model.int8.onnx"
# The engines that serve an artifact: onnxruntime runs ONNX_FILE (the zip function); torch rebuilds
# the eager model from WEIGHTS_FILE (the container image), for ops ONNX cannot express.
Runtime = Literal["onnxruntime", "torch"]
# Which of its graphs an onnxruntime function serves (models.toml `serving.precision`).
Precision = Literal["fp32", "int8"]
SERVED_GRAPH: Final[dict[Precision, str]] = {"fp32": ONNX_FILE, "int8": INT8_ONNX_FILE}
# Files of a version each runtime never opens, so a function does not fetch them
# (functions/model_loader.py) and its budget does not count them (modelfn/budget.py): the zip
# function runs one ONNX graph and never reads the safetensors weights (as large as the graph
# again) nor the graph of the other precision, the torch image rebuilds the module from the
# weights and never reads a graph. `unread_by` picks the zip function's by precision.
UNREAD_BY: Final[dict[Runtime, tuple[str, ...]]] = {
    "onnxruntime": (WEIGHTS_FILE, INT8_ONNX_FILE),
    "torch": (ONNX_FILE, ONNX_DATA_FILE, INT8_ONNX_FILE),
}
_UNREAD_AT_INT8: Final = (WEIGHTS_FILE, ONNX_FILE, ONNX_DATA_FILE)


def unread_by(runtime: Runtime, precision: Precision = "fp32") -> tuple[str, ...]:
    """The files a function of this runtime and precision never opens (and never fetches): an
    int8 zip function reads `model.int8.onnx` alone, never the fp32 graph nor its weights."""
    if runtime == "onnxruntime" and precision == "int8":
        return _UNREAD_AT_INT8
    return UNREAD_BY[runtime]


VERSION_PATTERN = r"^\d{8}T\d{6}Z-[0-9a-f]{8}$"
# Names become S3 keys, URL path segments, cache folders and CloudFormation ids: lower-case words
# joined by single hyphens (so no two names map to the same id), one path segment each.
MODEL_NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
MODEL_NAME_MAX = 63
ALIAS_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ALIAS_MAX = 32
# Files of a version are plain names inside its folder: never a path that could leave it.
FILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
_CHUNK = 1 << 20  # 1 MiB reads keep hashing memory flat for large graphs


class ArtifactError(Exception):
    """An artifact is missing, malformed or fails verification; the message names the file."""


class IntegrityError(ArtifactError):
    """A file's bytes do not match the sha256 recorded for it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """One graph input or output. Dynamic dimensions are -1, as in the Open Inference Protocol."""

    name: str
    # BYTES (OIP's string type) appears in the text tasks' request signatures, never in a graph.
    datatype: Literal["FP32", "FP16", "INT64", "INT32", "UINT8", "BOOL", "BYTES"]
    shape: list[int]


class FileEntry(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, description="Bytes.")


CropRounding = Literal["round", "floor"]

# How a classifier's logits become the scores it answers (functions/tasks/classification.py, the
# edge runner): softmax, one label per input (the default); sigmoid, each label scored on its own
# (multi-label: Hugging Face's problem_type "multi_label_classification"); logits, as the graph
# returns them (a graph that ends in its own softmax, or scores another way).
Scores = Literal["softmax", "sigmoid", "logits"]
CLASSIFIER_TASKS = ("image-classification", "text-classification")


class ImagePreprocessing(_Strict):
    """How serving turns an image into the graph's input tensor, one scheme for every model.

    decode -> RGB pixels (0..255, HxWx3) -> with `resize`: the shorter side to `resize` pixels
    (aspect kept), then the centre height x width crop (torchvision's Resize(int) + CenterCrop, a
    Hugging Face image processor's shortest_edge + crop_size); without: straight to height x
    width -> x * `scale` -> (x - mean) / std per channel -> `channel_order` -> `layout`, float32.
    Resampling is PIL's `interpolation` filter, which is what torchvision's Resize runs on a PIL
    image. The built-in cifar10-cnn: no resize, its 32x32 inputs already the graph's size.
    """

    kind: Literal["image"] = "image"
    height: int = Field(gt=0, description="The graph's input height, after any resize and crop.")
    width: int = Field(gt=0, description="The graph's input width, after any resize and crop.")
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    resize: int | None = Field(
        default=None,
        gt=0,
        description="Shorter side before the centre crop; None: resize straight to the size.",
    )
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    scale: float = Field(default=1 / 255, gt=0, description="Pixel multiplier before mean/std.")
    channel_order: Literal["RGB", "BGR"] = "RGB"
    # The two pipelines agree on everything but where the centre crop starts when the margin is
    # odd: torchvision's CenterCrop at round((H - h) / 2) (half to even), a Hugging Face image
    # processor's center_crop at (H - h) // 2, one pixel apart when (H - h) % 4 == 3.
    crop_rounding: CropRounding = Field(
        default="round",
        description="The centre crop's first row and column: round((H - h) / 2), as "
        "torchvision's CenterCrop; floor, (H - h) // 2, as a Hugging Face image processor.",
    )

    @model_validator(mode="after")
    def _crop_fits(self) -> ImagePreprocessing:
        if self.resize is not None and self.resize < min(self.height, self.width):
            raise ValueError(
                f"resize {self.resize} is smaller than the {self.height}x{self.width} crop: the "
                "shorter side must be at least the crop's"
            )
        return self


class Substitution(_Strict):
    """One regular-expression rewrite (Python `re.sub` syntax), applied to the whole text."""

    pattern: str
    replacement: str


class TextPreprocessing(_Strict):
    """How text becomes token ids, for training and serving alike (`modelfn.text` runs it).

    text -> each `substitutions` rewrite, in order -> split on whitespace -> each word: kept if
    the vocabulary has it as written (so a corpus's own `N` or `<unk>` stays itself); else
    lower-cased (if `lowercase`) and kept if known; else stripped of `strip_chars` at both ends
    (dropped if nothing is left), replaced by `number_token` if it then fully matches
    `number_pattern`, and looked up once more, `unknown_token` where the vocabulary lacks it.
    With `ngrams` = n > 1, the runs of 2..n consecutive tokens (joined by one space) are appended
    after the unigrams, each only where the vocabulary has it (a bag-of-n-grams model's
    features); with `binary`, each feature is kept once, where it first occurs.
    """

    kind: Literal["text"] = "text"
    lowercase: bool
    substitutions: list[Substitution] = Field(default_factory=list)
    strip_chars: str = ""
    number_pattern: str | None = Field(
        default=None, description="Regex a whole token must match to become number_token."
    )
    number_token: str | None = Field(default=None, description="e.g. Penn Treebank's 'N'.")
    vocabulary: str = Field(
        default=VOCAB_FILE, pattern=FILE_NAME_PATTERN, description="A file of the version."
    )
    unknown_token: str = Field(description="Stands for every out-of-vocabulary word.")
    eos_token: str | None = Field(
        default=None, description="Ends each sentence (language models); also starts the context."
    )
    padding_token: str | None = Field(default=None, description="Pads batches; id 0 by convention.")
    ngrams: int = Field(default=1, ge=1, le=3)
    binary: bool = Field(
        default=False,
        description="Bag-of-n-grams features: each feature once per text (presence, not count).",
    )
    max_tokens: int = Field(
        gt=0, description="Longest text in (unigram) tokens a request may send."
    )

    @model_validator(mode="after")
    def _number_rule_is_whole(self) -> TextPreprocessing:
        if (self.number_pattern is None) != (self.number_token is None):
            raise ValueError("number_pattern and number_token go together: set both or neither")
        return self


class TokenizerInputs(_Strict):
    """Which graph input takes each of the tokenizer's outputs; None: the graph takes none."""

    input_ids: str
    attention_mask: str | None = None
    token_type_ids: str | None = None

    def names(self) -> list[str]:
        """The graph inputs fed, in the order above."""
        return [n for n in (self.input_ids, self.attention_mask, self.token_type_ids) if n]


class TokenizerPreprocessing(_Strict):
    """A Hugging Face tokenizer as data (`modelfn.tokenizer_file` runs it, with `tokenizers`).

    text -> `file`'s pipeline as the `tokenizers` library runs it (normaliser, pre-tokeniser,
    model, and the post-processor that adds the special tokens the model expects, e.g. BERT's
    [CLS] ... [SEP]) -> with `truncation`, the ids cut to `max_length` (special tokens included)
    on `truncation_side`; without, a longer text is refused -> the batch padded with `pad_id` on
    `padding_side` to its longest text (`padding` "longest") or to `max_length`; attention_mask
    1 for a token, 0 for padding; token_type_ids as the post-processor sets them, 0 on padding.
    These are the ids `transformers.AutoTokenizer` gives for the same folder when called with
    `truncation=truncation, max_length=max_length, padding=True`.
    """

    kind: Literal["tokenizer"] = "tokenizer"
    file: str = Field(
        default=TOKENIZER_FILE, pattern=FILE_NAME_PATTERN, description="A file of the version."
    )
    max_length: int = Field(
        gt=0, description="Longest sequence in tokens, special tokens included."
    )
    truncation: bool = Field(
        description="True: a longer text is cut to max_length; false: it is refused (400)."
    )
    truncation_side: Literal["right", "left"] = "right"
    padding: Literal["longest", "max_length"] = "longest"
    padding_side: Literal["right", "left"] = "right"
    pad_id: int = Field(ge=0, description="The padding token's id.")
    inputs: TokenizerInputs


# `kind` picks the member, so a manifest says which pre-processing serving must replay.
Preprocessing = Annotated[
    ImagePreprocessing | TextPreprocessing | TokenizerPreprocessing, Field(discriminator="kind")
]


class Architecture(_Strict):
    """The model module and its constructor arguments: weights + this rebuild the nn.Module."""

    module: str = Field(description="Module in architectures/, e.g. 'cifar10_cnn'.")
    config: dict[str, Any] = Field(default_factory=dict)


class DataFingerprint(_Strict):
    """Which data trained and evaluated this version."""

    dataset: str
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Over the data files, in name order."
    )
    files: list[str]
    examples: dict[str, int] = Field(
        description="Examples per split, e.g. {'train': 800, 'test': 200}."
    )


class ImportRecord(_Strict):
    """Where an imported model came from and how it was checked (`modelfn import`).

    The user's code ran at import time, on the user's machine; the artifact holds none of it.
    """

    source: Literal["onnx", "torch-module", "huggingface"]
    reference: str = Field(
        description="The ONNX or weights file's name, 'package.module:callable', or the folder's name."
    )
    source_sha256: dict[str, str] = Field(
        description="sha256 of every file imported, by file name (the graph, the weights, ...)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="The import's options, as given (labels, sizes, ...)."
    )
    parity: dict[str, float] = Field(
        default_factory=dict,
        description="Max abs difference per output, reference (torch) vs onnxruntime.",
    )
    parity_inputs: Literal["examples", "generated", "none"] = Field(
        description="What the parity check ran on: the user's examples, generated inputs, or "
        "nothing to compare against (an ONNX file: onnxruntime's own run only)."
    )
    tolerance: float = Field(gt=0, description="The largest difference the import accepted.")
    example_sha256: list[str] = Field(
        default_factory=list, description="sha256 of each example input the user gave."
    )


class QuantizationRecord(_Strict):
    """How `model.int8.onnx` was made from `model.onnx` and what it lost, as measured before it
    became a file of the version (`modelfn quantize`, or `modelfn train` with
    `serving.precision = "int8"`); the edge exporter's quantizer and parity code made both."""

    mode: Literal["dynamic", "static-qdq"] = Field(
        description="onnxruntime's dynamic int8, or static QDQ calibrated on real inputs."
    )
    threshold: str = Field(description="The registry's limit it was held to, in words.")
    verdict: str = Field(description="The figures the threshold read, in words.")
    figures: dict[str, float] = Field(
        description="fp32 against int8 on the test data: each graph's score (fp32_accuracy, "
        "int8_perplexity, ...), their agreement, the graphs' bytes and size_ratio."
    )
    test_data: str = Field(description="What the figures were measured on (and calibrated on).")
    onnxruntime: str = Field(description="The onnxruntime version that quantized and scored it.")
    source_version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        description="The published version this one was derived from (its files and an int8 "
        "graph); None when the version was quantized before it was first published.",
    )


class TrainingRecord(_Strict):
    preset: str
    epochs: int
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    seed: int
    seconds: float = Field(description="Wall time of the training loop on the training machine.")


class Manifest(_Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    version: str = Field(pattern=VERSION_PATTERN)
    task: str
    created_at: datetime
    frameworks: dict[str, str] = Field(description="Package versions that produced the files.")
    architecture: Architecture | None = Field(
        default=None,
        description="Trained models: the module in architectures/ that rebuilds the weights. "
        "Imported ones have none (their code stays with the user).",
    )
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] = Field(description="Class names, in logit order; empty for language models.")
    scores: Scores = Field(
        default="softmax",
        description="Classifiers: how the logits become the answered scores (softmax, sigmoid "
        "for multi-label, or the logits as they are).",
    )
    preprocessing: Preprocessing | None = Field(
        default=None, description="None for the tensor task: OIP tensors in and out as they are."
    )
    metrics: dict[str, float] = Field(description="Evaluation on the held-out split.")
    # Exactly one of the two: a version was trained here (with its data) or imported.
    training: TrainingRecord | None = None
    data: DataFingerprint | None = None
    imported: ImportRecord | None = None
    quantization: QuantizationRecord | None = Field(
        default=None, description="Present exactly when files lists model.int8.onnx."
    )
    reference: ReferenceStats | None = Field(
        default=None,
        description="Its inputs' and answers' statistics on held-out data, which `modelfn drift` "
        "compares captured requests against (modelfn/reference_stats.py).",
    )
    files: dict[Annotated[str, Field(pattern=FILE_NAME_PATTERN)], FileEntry] = Field(
        description="Every file of the version except the manifest, by plain file name."
    )

    @model_validator(mode="after")
    def _trained_or_imported(self) -> Manifest:
        trained = self.training is not None
        if trained == (self.imported is not None):
            raise ValueError("a version is either trained (training) or imported, exactly one")
        if trained and (self.data is None or self.architecture is None):
            raise ValueError("a trained version records its data and its architecture")
        return self

    @model_validator(mode="after")
    def _scores_of_a_classifier(self) -> Manifest:
        if self.scores != "softmax" and self.task not in CLASSIFIER_TASKS:
            raise ValueError(f"scores {self.scores!r} applies to classifiers, not {self.task}")
        return self

    @model_validator(mode="after")
    def _external_data_has_its_graph(self) -> Manifest:
        if ONNX_DATA_FILE in self.files and ONNX_FILE not in self.files:
            raise ValueError(f"files lists {ONNX_DATA_FILE} without the graph, {ONNX_FILE}")
        return self

    @model_validator(mode="after")
    def _int8_graph_has_its_record(self) -> Manifest:
        if (INT8_ONNX_FILE in self.files) != (self.quantization is not None):
            raise ValueError(
                f"files lists {INT8_ONNX_FILE} without a quantization record, or the record "
                "without the file: the two come together"
            )
        if self.quantization is not None and ONNX_FILE not in self.files:
            raise ValueError(
                f"files lists {INT8_ONNX_FILE} without the graph it was quantized from"
            )
        return self

    @model_validator(mode="after")
    def _vocabulary_is_a_file(self) -> Manifest:
        pre = self.preprocessing
        if isinstance(pre, TextPreprocessing) and pre.vocabulary not in self.files:
            raise ValueError(
                f"preprocessing.vocabulary names {pre.vocabulary!r}, which files does not list"
            )
        if isinstance(pre, TokenizerPreprocessing):
            if pre.file not in self.files:
                raise ValueError(
                    f"preprocessing.file names {pre.file!r}, which files does not list"
                )
            graph = {t.name for t in self.inputs}
            strangers = [n for n in pre.inputs.names() if n not in graph]
            if strangers:
                raise ValueError(
                    f"preprocessing.inputs names {strangers}, which are not graph inputs"
                )
        return self

    def to_json(self) -> bytes:
        # A version without an int8 graph or reference statistics is written as before issues
        # 22 and 23, so a function deployed from older code (extra="forbid") still reads it.
        omit = {name for name in ("quantization", "reference") if getattr(self, name) is None}
        return (self.model_dump_json(indent=2, exclude=omit or None) + "\n").encode("utf-8")


class Example(_Strict):
    """One real held-out input, exactly as the friendly predict route takes it."""

    input: str = Field(description="A base64 PNG (images) or the text itself (text models).")
    split: str = Field(description="The data split it comes from, never one trained on.")
    index: int = Field(ge=0, description="Its position in that split, to find it again.")
    label: str | None = Field(default=None, description="The data set's answer, if it has one.")


class Examples(_Strict):
    """`examples.json`: inputs the docs and demo pages show, so they show real data, not ours."""

    dataset: str
    examples: list[Example] = Field(min_length=1)

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


class Canary(_Strict):
    """A second version an alias sends a share of its requests to, while it proves itself."""

    version: str = Field(pattern=VERSION_PATTERN)
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Percent of requests, whole: 0 and 100 are not canaries (serve one version: move the alias).
    weight: int = Field(ge=1, le=99)


class Alias(_Strict):
    """A movable pointer (`latest`, later `prod`) at one immutable version, the stable one, and
    during a canary rollout at a second version with its share of requests (docs/serving.md)."""

    model: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    alias: str = Field(pattern=ALIAS_PATTERN, max_length=ALIAS_MAX)
    version: str = Field(pattern=VERSION_PATTERN)
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    updated_at: datetime
    canary: Canary | None = None

    @model_validator(mode="after")
    def _canary_is_another_version(self) -> Alias:
        if self.canary is not None and self.canary.version == self.version:
            raise ValueError(
                f"the canary version {self.version} is the stable version; "
                "a canary is a second version"
            )
        return self

    def to_json(self) -> bytes:
        # An alias without a canary is written as before issue 23, so a function deployed from
        # older code (extra="forbid") still reads every plain alias written by this one.
        omit = {"canary"} if self.canary is None else None
        return (self.model_dump_json(indent=2, exclude=omit) + "\n").encode("utf-8")


# --- keys inside a store ---------------------------------------------------------------------


def version_prefix(model: str, version: str) -> str:
    return f"{model}/{version}"


def file_key(model: str, version: str, filename: str) -> str:
    return f"{model}/{version}/{filename}"


def alias_key(model: str, alias: str) -> str:
    return f"{model}/aliases/{alias}.json"


# Edge bundles (edge/publish.py) live beside the model folders, under `edge/<model>/<version>/`;
# infra/ serves that prefix through CloudFront. `edge` is therefore not a usable model name.
EDGE_PREFIX = "edge"


def edge_prefix(model: str, version: str) -> str:
    return f"{EDGE_PREFIX}/{model}/{version}"


# --- hashing and verification ----------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_files(folder: Path, names: list[str]) -> dict[str, FileEntry]:
    """sha256 and size of each named file in `folder`, for `Manifest.files`."""
    entries = {}
    for name in names:
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"artifact file {path} does not exist")
        entries[name] = FileEntry(sha256=sha256_file(path), size=path.stat().st_size)
    return entries


def new_version(weights_sha256: str, now: datetime | None = None) -> str:
    """A sortable, unique version id: UTC time of creation plus the weights' hash prefix."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{weights_sha256[:8]}"


def is_version(text: str) -> bool:
    return re.fullmatch(VERSION_PATTERN, text) is not None


def is_alias(text: str) -> bool:
    return len(text) <= ALIAS_MAX and re.fullmatch(ALIAS_PATTERN, text) is not None


def is_model_name(text: str) -> bool:
    return len(text) <= MODEL_NAME_MAX and re.fullmatch(MODEL_NAME_PATTERN, text) is not None


def parse_manifest(data: bytes, source: str = MANIFEST_FILE) -> Manifest:
    try:
        return Manifest.model_validate_json(data)
    except ValueError as exc:
        raise ArtifactError(f"{source} is not a valid modelfn manifest: {exc}") from exc


def parse_alias(data: bytes, source: str = "alias") -> Alias:
    try:
        return Alias.model_validate_json(data)
    except ValueError as exc:
        raise ArtifactError(f"{source} is not a valid modelfn alias: {exc}") from exc


def vocabulary_json(tokens: list[str]) -> bytes:
    """The vocabulary file's bytes: a JSON list of tokens, one per line, id = position."""
    return (
        "[\n" + ",\n".join(json.dumps(t, ensure_ascii=False) for t in tokens) + "\n]\n"
    ).encode()


def parse_vocabulary(data: bytes, source: str = VOCAB_FILE) -> list[str]:
    """A vocabulary file -> its tokens; raises ArtifactError unless a JSON list of unique strings."""
    try:
        tokens = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArtifactError(f"{source} is not UTF-8 JSON: {exc}") from exc
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise ArtifactError(f"{source} must be a JSON list of non-empty strings (the tokens)")
    if len(set(tokens)) != len(tokens):
        raise ArtifactError(f"{source} lists a token twice; each token has exactly one id")
    return tokens


def parse_examples(data: bytes, source: str = EXAMPLES_FILE) -> Examples:
    try:
        return Examples.model_validate_json(data)
    except ValueError as exc:
        raise ArtifactError(f"{source} is not a valid modelfn examples file: {exc}") from exc


def graph_files(manifest: Manifest) -> list[str]:
    """The version's ONNX graph as files: ONNX_FILE, and ONNX_DATA_FILE where its weights are
    external data. Empty for a version without a graph."""
    return [name for name in (ONNX_FILE, ONNX_DATA_FILE) if name in manifest.files]


def read_verified(folder: Path, manifest: Manifest, name: str) -> bytes:
    """The bytes of the version's file `name`, checked against the manifest as they are read.

    The fetch verified the file on its way into the cache; checking again as it is used means a
    file changed since (the cache lives in a shared /tmp) is still refused.
    """
    entry = manifest.files.get(name)
    if entry is None:
        raise ArtifactError(f"{manifest.name} {manifest.version}: the manifest lists no {name}")
    return read_checked(folder / name, entry)


def read_checked(path: Path, entry: FileEntry) -> bytes:
    """The bytes at `path`, or IntegrityError unless they match `entry`'s size and sha256.

    Whatever a server loads is read once, through here: the bytes it checks are the bytes it uses.
    """
    data = path.read_bytes()
    if len(data) != entry.size or sha256_bytes(data) != entry.sha256:
        raise IntegrityError(f"{path}: bytes do not match the manifest's sha256; refusing to load")
    return data


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    path = folder / MANIFEST_FILE
    path.write_bytes(manifest.to_json())
    return path


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist; is {folder} an artifact folder?")
    return parse_manifest(path.read_bytes(), source=str(path))


def verify_file(path: Path, expected: FileEntry) -> None:
    """Raise IntegrityError unless `path` has exactly the recorded size and sha256."""
    if not path.is_file():
        raise ArtifactError(f"artifact file {path} is missing")
    size = path.stat().st_size
    check_bytes(str(path), size, None, expected)  # a wrong size costs no hashing
    check_bytes(str(path), size, sha256_file(path), expected)


def check_bytes(where: str, size: int, sha256: str | None, expected: FileEntry) -> None:
    """Raise IntegrityError, naming `where`, unless `size` and `sha256` (None: the size alone) are
    the ones `expected` records. A store's download checks the bytes it hashed on the way in."""
    if size != expected.size:
        raise IntegrityError(
            f"{where}: size {size} bytes, manifest says {expected.size}; refusing to load"
        )
    if sha256 is not None and sha256 != expected.sha256:
        raise IntegrityError(
            f"{where}: sha256 {sha256} does not match manifest {expected.sha256}; refusing to load"
        )


def verify_artifact(
    folder: Path, manifest: Manifest | None = None, *, skip: Collection[str] = ()
) -> Manifest:
    """Check every file of the artifact in `folder` against its manifest, but those in `skip` (a
    reader that never opens them need not have fetched them); return the manifest."""
    manifest = manifest or read_manifest(folder)
    for name, entry in manifest.files.items():
        if name not in skip:
            verify_file(folder / name, entry)
    return manifest


def commit_version(staging: Path, manifest: Manifest) -> Path:
    """Write `manifest` into the staged version folder `staging` (a hidden sibling of the final
    one), verify every file against it, and rename it to `<its parent>/<manifest.version>`, so
    readers never see half a version. Training and `modelfn import` both finish this way.

    On any failure the staging folder is removed; ArtifactError where the version exists already
    (versions are immutable: the same bytes written within the same second).
    """
    folder = staging.parent / manifest.version
    try:
        write_manifest(staging, manifest)
        verify_artifact(staging, manifest)
        if folder.exists():
            raise ArtifactError(
                f"{folder} already exists; versions are immutable: remove it, or write again "
                "for a new version"
            )
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def framework_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """A manifest's `frameworks`: Python's version and each installed package's of `packages`
    (the ones that produced and checked the files); a package not installed is left out."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
