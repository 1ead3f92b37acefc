"""The user's example inputs: parity cases for the gate and `examples.json` for the artifact.

image-classification takes image files (anything PIL decodes); each goes into examples.json as a
base64 PNG, the way the friendly predict route takes it. The text tasks take `.txt` files, one
text each, kept as the text. The tensor task takes `.npy` files (one
input's value; the graph must have one input) or `.json` files of named tensors
(`{"input_name": nested list, ...}`), one example per file, with or without the batch axis of 1;
each goes into examples.json as the JSON text of an Open Inference Protocol request body
(`{"inputs": [{"name", "datatype", "shape", "data"}]}`), which any OIP client can send as is.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from importing.errors import ImportRefused
from importing.image_scheme import preprocess_image
from importing.parity import Case
from importing.tensors import fits, numpy_dtype, shape_text
from modelfn.artifact import Example, Examples, ImagePreprocessing, TensorSpec, sha256_bytes
from modelfn.images import fit
from modelfn.input_features import image_features, token_text_features
from modelfn.tokenizer_file import TokenizerFile

DATASET = "user examples"
SPLIT = "examples"  # given by the user at import time, never trained on here
TENSOR_SUFFIXES = (".npy", ".json")


@dataclass(frozen=True)
class UserExamples:
    cases: list[Case]
    record: Examples
    sha256: list[str]  # of each file as given, in order
    # Each input's features as the function will capture them (modelfn/input_features.py), for
    # the version's reference statistics; empty for tensors, which have none.
    features: list[dict[str, float]]


def image_examples(
    paths: Sequence[Path], spec: ImagePreprocessing, input_name: str
) -> UserExamples:
    """Decode each image file, preprocess it with the scheme, keep it as a PNG for the docs."""
    from PIL import Image, UnidentifiedImageError

    cases, examples, hashes, features = [], [], [], []
    for i, path in enumerate(paths):
        raw = _read(path)
        try:
            with Image.open(io.BytesIO(raw)) as opened:
                image = opened.convert("RGB")  # decodes every pixel: a truncated file fails here
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
            kind = (
                f"; {path.suffix} files are examples for the tensor task"
                if path.suffix in TENSOR_SUFFIXES
                else ""
            )
            raise ImportRefused(
                f"example {path} is not an image PIL can decode ({exc}): image-classification "
                f"takes image files (PNG, JPEG, ...) as examples{kind}"
            ) from exc
        cases.append(Case(name=path.name, feeds={input_name: preprocess_image(image, spec)}))
        features += image_features([image.size], fit(image, spec)[None])
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        examples.append(
            Example(input=base64.b64encode(buffer.getvalue()).decode("ascii"), split=SPLIT, index=i)
        )
        hashes.append(sha256_bytes(raw))
    return UserExamples(cases, Examples(dataset=DATASET, examples=examples), hashes, features)


def text_examples(paths: Sequence[Path], tokenizer: TokenizerFile) -> UserExamples:
    """Each `.txt` file is one example text (its whole content, UTF-8, trimmed), tokenised by the
    function's tokenizer; examples.json keeps the text, as the friendly route takes it."""
    cases, examples, hashes, features = [], [], [], []
    for i, path in enumerate(paths):
        raw = _read(path)
        if path.suffix != ".txt":
            raise ImportRefused(
                f"example {path}: a text model takes .txt files as examples, one text per file"
            )
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ImportRefused(f"example {path} is not UTF-8 text: {exc}") from exc
        if not text:
            raise ImportRefused(f"example {path} is empty; give one text per file")
        encoded = tokenizer.encode([text])
        if encoded.lengths[0] > tokenizer.spec.max_length:
            raise ImportRefused(
                f"example {path} is {encoded.lengths[0]} tokens, over max_length "
                f"{tokenizer.spec.max_length}, and truncation is off, so the function would "
                "refuse it: give a shorter example, or import with truncation"
            )
        cases.append(Case(name=path.name, feeds=tokenizer.feeds(encoded), text=text))
        examples.append(Example(input=text, split=SPLIT, index=i))
        hashes.append(sha256_bytes(raw))
        features.append(token_text_features(text, encoded.ids[0], tokenizer.unknown_id))
    return UserExamples(cases, Examples(dataset=DATASET, examples=examples), hashes, features)


def tensor_examples(paths: Sequence[Path], inputs: list[TensorSpec]) -> UserExamples:
    """Read each `.npy` or `.json` example and check it against the graph's inputs."""
    cases, examples, hashes = [], [], []
    for i, path in enumerate(paths):
        raw = _read(path)
        if path.suffix == ".npy":
            if len(inputs) != 1:
                raise ImportRefused(
                    f"example {path}: a .npy file holds one tensor but the graph takes "
                    f"{len(inputs)} ({', '.join(s.name for s in inputs)}); give a .json file of "
                    "named tensors instead"
                )
            values = {inputs[0].name: _npy(raw, path)}
        elif path.suffix == ".json":
            values = _named_tensors(raw, path)
        else:
            raise ImportRefused(
                f"example {path}: the tensor task takes .npy files or .json files of named "
                "tensors as examples (image files are examples for image-classification)"
            )
        feeds = _feeds(values, inputs, path)
        cases.append(Case(name=path.name, feeds=feeds))
        examples.append(Example(input=_predict_input(feeds), split=SPLIT, index=i))
        hashes.append(sha256_bytes(raw))
    return UserExamples(cases, Examples(dataset=DATASET, examples=examples), hashes, [])


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise ImportRefused(f"example {path} does not exist")
    return path.read_bytes()


def _npy(raw: bytes, path: Path) -> NDArray[Any]:
    try:  # allow_pickle=False: an object array would unpickle code
        return np.asarray(np.load(io.BytesIO(raw), allow_pickle=False))
    except (ValueError, OSError) as exc:
        raise ImportRefused(f"example {path} is not a numeric .npy array: {exc}") from exc


def _named_tensors(raw: bytes, path: Path) -> dict[str, NDArray[Any]]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportRefused(f"example {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ImportRefused(
            f'example {path} must be a JSON object of named tensors, e.g. {{"x": [[0.1, 0.2]]}}'
        )
    values = {}
    for name, value in data.items():
        try:
            array = np.asarray(value)
        except ValueError:  # ragged lists
            array = np.asarray(None)
        if array.dtype.kind not in "biuf":  # strings are 'U', None 'O'
            raise ImportRefused(
                f"example {path}: {name!r} is not a rectangular array of numbers or booleans"
            )
        values[name] = array
    return values


def _feeds(values: dict[str, NDArray[Any]], inputs: list[TensorSpec], path: Path) -> dict[str, Any]:
    """The example's tensors as the graph takes them: each input present, batch axis of 1."""
    wanted = [s.name for s in inputs]
    if sorted(values) != sorted(wanted):
        raise ImportRefused(
            f"example {path} gives {', '.join(sorted(values))}; the graph takes "
            f"{', '.join(wanted)}: give exactly these, by name"
        )
    feeds = {}
    for spec in inputs:
        value = values[spec.name]
        if value.ndim == len(spec.shape) - 1:  # one example without its batch axis
            value = value[None]
        if not fits(value.shape, spec) or value.shape[0] != 1:
            raise ImportRefused(
                f"example {path}: {spec.name!r} has shape {list(value.shape)}; the graph takes "
                f"{shape_text(spec.shape)} and an example is one row (batch axis 1 or none)"
            )
        dtype = numpy_dtype(spec)
        if not np.can_cast(value.dtype, dtype, casting="same_kind"):
            raise ImportRefused(
                f"example {path}: {spec.name!r} holds {value.dtype} values; the graph takes "
                f"{spec.datatype}"
            )
        feeds[spec.name] = value.astype(dtype)
    return feeds


def _predict_input(feeds: dict[str, NDArray[Any]]) -> str:
    """One example as the friendly predict route takes it (the contract's `Example.input`): its
    named tensors as nested lists, without the batch axis."""
    return json.dumps(
        {name: value[0].tolist() for name, value in feeds.items()}, separators=(",", ":")
    )
