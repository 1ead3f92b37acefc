"""Fuzz the decoders: whatever a client sends, each returns a valid value or raises BadInput.

BadInput is the client error the app answers with a 400 `{"error": ...}` (functions/errors.py);
any other exception would be a 500. Hypothesis drives each decoder with well-formed, broken and
hostile inputs:

- images (functions/tasks/image_classification.py `preprocess`): PNG and JPEG in every Pillow
  mode, with EXIF orientations valid and not, truncated, bit-flipped, with a forged canvas size;
  base64 plain, wrapped, URL-safe, unpadded, as data URLs; random bytes and strings; HxWx3
  arrays of numbers, and arrays of anything else;
- text (functions/tasks/text_inputs.py `read_texts`, `texts_of`) with the published models' real
  tokenizers: any unicode (lone surrogates, controls, combining marks), empty, blank, huge;
- Open Inference Protocol tensors (functions/routes/infer.py `decode_inputs`, over
  functions/tensors.py): every datatype, BYTES included, JSON data flat and nested, the binary
  tensor data extension, and every mismatch of name, datatype, shape, size and value;
- the whole inference of each published model (`LoadedModel.predict`, `run_inference`), so
  parameters and what the graph does with decoded inputs are fuzzed too.

Every property is seeded by FUZZ_SEED (`MODELFN_FUZZ_SEED` overrides it); hypothesis prints the
failing example. The models are the three registry models trained with their `tiny` presets
(the `published_store` fixture, tests/conftest.py).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from functions.errors import BadInput
from functions.model_loader import LoadedModel, load_model
from functions.oip_inference import decode_inputs, run_inference
from functions.oip_schemas import InferenceRequest, RequestInput
from functions.settings import FunctionSettings
from functions.tasks.image_classification import preprocess
from functions.tasks.text_inputs import load_tokenizer, read_texts, texts_of
from functions.tensors import DATATYPE_NAMES, DATATYPES, to_binary
from modelfn.artifact import ImagePreprocessing, TensorSpec
from modelfn.store import LocalStore
from modelfn.text import Tokenizer
from tests.reliability.conftest import scaled

FUZZ_SEED = int(os.environ.get("MODELFN_FUZZ_SEED", "20261129"))
DECODER_CASES = scaled(ci=100, soak=5000)  # per decoder property: each call takes < 10 ms
MODEL_CASES = scaled(ci=40, soak=1000)  # per model property: each runs the graph
SPEC = ImagePreprocessing(height=32, width=32, mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))


def fuzz(cases: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Seeded, no example database (a run is reproducible from FUZZ_SEED alone), no deadline
    (one busy core makes timings noise)."""

    def apply(test: Callable[..., None]) -> Callable[..., None]:
        configured = settings(
            max_examples=cases,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
                HealthCheck.function_scoped_fixture,
            ],
        )(test)
        return seed(FUZZ_SEED)(configured)

    return apply


def decodes_or_refuses(decode: Callable[..., Any], *args: Any, names: tuple[str, ...]) -> Any:
    """`decode(*args)`, or None when it raised BadInput whose message names one of `names`."""
    try:
        value = decode(*args)
    except BadInput as exc:
        assert exc.status == 400
        assert exc.message.startswith(names), f"the message names no field: {exc.message!r}"
        event("refused")  # `pytest --hypothesis-show-statistics` shows how many of each
        return None
    event("decoded")
    return value


# --- strategies ----------------------------------------------------------------------------

# Any JSON value, as a request body may hold it (NaN and infinities too: Python's json reads them).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=20,
)
# Every code point, the troublesome ones often: lone surrogates (json.loads turns "\ud800" into
# one), NUL and other controls, byte-order and direction marks, combining marks, the last plane.
EDGE_CHARS = [
    "\ud800",
    "\udfff",
    "\x00",
    "\x1b",
    "\x7f",
    "\ufeff",
    "\u202e",
    "\u0301",
    "\U0010ffff",
    "\u0130",
]
any_text = st.text(
    st.characters(codec=None, categories=None) | st.sampled_from(EDGE_CHARS), max_size=200
)

IMAGE_MODES = {
    "PNG": ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"],
    "JPEG": ["RGB", "L", "CMYK"],
}


@st.composite
def image_files(draw: st.DrawFn) -> bytes:
    """A PNG or JPEG file, maybe with an EXIF orientation (0..9: 0 and 9 are invalid)."""
    from PIL import Image

    fmt = draw(st.sampled_from(sorted(IMAGE_MODES)))
    mode = draw(st.sampled_from(IMAGE_MODES[fmt]))
    height, width = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))  # Orientation
        options["exif"] = exif.tobytes()
    if fmt == "JPEG":
        options["progressive"] = draw(st.booleans())
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def forge_png_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR claiming another canvas size (CRC fixed, pixel data unchanged)."""
    ihdr = data[12:29]  # chunk type + 13 bytes of header
    forged = ihdr[:4] + struct.pack(">II", width, height) + ihdr[12:]
    return data[:12] + forged + struct.pack(">I", zlib.crc32(forged)) + data[33:]


@st.composite
def damaged(draw: st.DrawFn, files: st.SearchStrategy[bytes]) -> bytes:
    data = draw(files)
    how = draw(st.sampled_from(["none", "truncate", "flip", "append", "forge"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    if how == "forge" and data.startswith(b"\x89PNG"):
        side = st.integers(0, 2**31 - 1) | st.integers(0, 70000)
        return forge_png_size(data, draw(side), draw(side))
    return data


@st.composite
def encoded(draw: st.DrawFn, data: bytes) -> str:
    """`data` as a client might send it: base64 in its variants, or a data URL."""
    how = draw(st.sampled_from(["plain", "wrapped", "urlsafe", "unpadded", "data-url", "bad-url"]))
    text = base64.b64encode(data).decode("ascii")
    if how == "wrapped":  # MIME-style line breaks and stray blanks
        text = "\n".join(text[i : i + 76] for i in range(0, len(text), 76)) + " \t"
    elif how == "urlsafe":
        text = base64.urlsafe_b64encode(data).decode("ascii")
    elif how == "unpadded":
        text = text.rstrip("=")
    elif how == "data-url":
        text = f"data:{draw(st.sampled_from(['image/png', 'image/jpeg', 'text/plain', '']))};base64,{text}"
    elif how == "bad-url":
        text = f"data:image/png,{text}"
    return text


image_strings = st.one_of(
    damaged(image_files()).flatmap(encoded),
    st.binary(max_size=200).flatmap(encoded),
    any_text,
)


@st.composite
def pixel_arrays(draw: st.DrawFn) -> Any:
    """HxWx3 nested lists of numbers (in range or not), or a malformed nest."""
    if draw(st.booleans()):
        height, width = draw(st.integers(0, 40)), draw(st.integers(0, 40))
        channels = draw(st.sampled_from([3, 3, 3, 1, 4]))
        value = (
            st.integers(0, 255)
            | st.floats(-1, 256)
            | st.sampled_from([math.nan, math.inf, 2**70, True])
        )
        pixel = draw(st.lists(value, min_size=channels, max_size=channels))
        # One drawn pixel everywhere, a few drawn ones scattered: big arrays stay cheap to draw.
        grid = [[list(pixel) for _ in range(width)] for _ in range(height)]
        for _ in range(draw(st.integers(0, 3))):
            if height and width:
                grid[draw(st.integers(0, height - 1))][draw(st.integers(0, width - 1))] = draw(
                    st.lists(value, min_size=0, max_size=4)
                )
        return grid
    return draw(st.lists(json_values, max_size=4))


image_items = st.one_of(image_strings, pixel_arrays(), json_values)


# --- images ------------------------------------------------------------------------------------


@fuzz(DECODER_CASES)
@given(inputs=st.lists(image_items, min_size=0, max_size=4))
def test_images_decode_or_are_refused(inputs: list[Any]) -> None:
    batch = decodes_or_refuses(preprocess, inputs, SPEC, names=("inputs",))
    if batch is not None:
        assert batch.shape == (len(inputs), 3, 32, 32) and batch.dtype == np.float32
        assert np.isfinite(batch).all()


@fuzz(DECODER_CASES)
@given(files=st.lists(image_files(), min_size=1, max_size=3))
def test_every_valid_image_decodes(files: list[bytes]) -> None:
    """The other half: a well-formed PNG or JPEG, in any mode or orientation, is never refused."""
    batch = preprocess([base64.b64encode(f).decode() for f in files], SPEC)
    assert batch.shape == (len(files), 3, 32, 32) and np.isfinite(batch).all()


# --- text --------------------------------------------------------------------------------------


def published(
    model: str, store: LocalStore, tmp_path_factory: pytest.TempPathFactory
) -> LoadedModel:
    cache = tmp_path_factory.mktemp(model)
    return load_model(FunctionSettings(model=model, store_uri=str(store.root), cache_dir=cache))


@pytest.fixture(scope="module")
def models(
    published_store: LocalStore, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Callable[[], LoadedModel]]:
    """Each published model, loaded the first time a test asks for it."""
    loaded: dict[str, LoadedModel] = {}

    def getter(model: str) -> Callable[[], LoadedModel]:
        def get() -> LoadedModel:
            if model not in loaded:
                loaded[model] = published(model, published_store, tmp_path_factory)
            return loaded[model]

        return get

    return {m: getter(m) for m in ("cifar10-cnn", "ptb-lstm", "imdb-sentiment")}


def tokenizer_of(model: LoadedModel) -> Tokenizer:
    """The built-in text model's tokenizer, as its task adapter loads it from the version."""
    return load_tokenizer(model.manifest, model.folder)


@st.composite
def texts(draw: st.DrawFn, vocabulary: list[str]) -> Any:
    """Real words with any separators, any unicode, blank, huge, or not a string at all."""
    kind = draw(st.sampled_from(["words", "unicode", "blank", "huge", "other"]))
    if kind == "words":
        words = draw(
            st.lists(
                st.sampled_from(vocabulary) | any_text.map(lambda t: t[:12]),
                min_size=1,
                max_size=20,
            )
        )
        separator = draw(st.sampled_from([" ", "\n", "\t", "\u00a0", "\u2028", "<br />", "\x00"]))
        return separator.join(words)
    if kind == "unicode":
        return draw(any_text)
    if kind == "blank":
        return draw(
            st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2000\u3000\ufeff\u200b"), max_size=10)
        )
    if kind == "huge":  # around every limit: max_tokens, MAX_TEXT_BYTES (32 KiB), MAX_TOTAL_TOKENS
        word = draw(st.sampled_from(vocabulary[:50] + ["é", "\U0001f600", "!?"]))
        return " ".join([word] * draw(st.sampled_from([256, 257, 2500, 2501, 6000, 12000])))
    return draw(json_values)


@pytest.mark.parametrize("model_name", ["ptb-lstm", "imdb-sentiment"])
def test_texts_tokenise_or_are_refused(
    model_name: str, models: dict[str, Callable[[], LoadedModel]]
) -> None:
    tokenizer = tokenizer_of(models[model_name]())
    limit = tokenizer.spec.max_tokens

    @fuzz(DECODER_CASES)
    @given(
        inputs=st.lists(texts(tokenizer.vocabulary), max_size=4)
        | st.lists(st.just("a"), min_size=64, max_size=70)
    )
    def check(inputs: list[Any]) -> None:
        tokens = decodes_or_refuses(read_texts, inputs, tokenizer, names=("inputs",))
        if tokens is not None:
            assert len(tokens) == len(inputs)
            assert all(1 <= len(t) <= limit and all(isinstance(w, str) for w in t) for t in tokens)

    check()


@fuzz(DECODER_CASES)
@given(
    values=st.lists(
        st.binary(max_size=30) | any_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
        max_size=5,
    )
)
def test_bytes_tensors_decode_to_text_or_are_refused(values: list[bytes]) -> None:
    tensor = np.array(values, dtype=np.object_)
    decoded = decodes_or_refuses(texts_of, tensor, names=("text[",))
    if decoded is not None:
        assert [t.encode("utf-8") for t in decoded] == values


# --- Open Inference Protocol tensors -----------------------------------------------------------

# Inputs a model may take: every datatype, fixed and free dimensions.
SPECS = [
    TensorSpec(name="x", datatype="FP32", shape=[-1, 3, 2, 2]),
    TensorSpec(name="ids", datatype="INT64", shape=[-1, -1]),
    TensorSpec(name="h", datatype="FP16", shape=[2, -1]),
    TensorSpec(name="mask", datatype="BOOL", shape=[-1]),
    TensorSpec(name="pix", datatype="UINT8", shape=[-1, 4]),
    TensorSpec(name="n", datatype="INT32", shape=[-1]),
    TensorSpec(name="text", datatype="BYTES", shape=[-1]),
    TensorSpec(name="pairs", datatype="BYTES", shape=[-1, 2]),
]


def values_of(datatype: str, *, wrong: bool) -> st.SearchStrategy[Any]:
    """JSON values of the datatype, within its range; `wrong`: at and past it, or of other kinds."""
    if datatype == "BYTES":
        return any_text | (
            st.integers() | st.none() | st.lists(any_text, max_size=2) if wrong else any_text
        )
    if datatype == "BOOL":
        return st.booleans() | st.integers(0, 1) if wrong else st.booleans()
    dtype = np.dtype(DATATYPES[datatype][0])
    if dtype.kind == "f":
        big = float(np.finfo(dtype).max)
        if wrong:
            return (
                st.floats()
                | st.integers(-(2**70), 2**70)
                | st.sampled_from([big, -big, big * 2, math.nan])
            )
        return st.floats(-big, big) | st.integers(-1000, 1000)
    info = np.iinfo(dtype)
    if wrong:
        return st.integers(int(info.min) - 2, int(info.max) + 2) | st.floats() | st.booleans()
    return st.integers(int(info.min), int(info.max)) | st.integers(0, 9)


def nest(values: list[Any], shape: list[int]) -> Any:
    """Flat row-major values -> nested lists of `shape` (when the count fits)."""
    if len(shape) <= 1 or not values or math.prod(shape) != len(values):
        return values
    step = len(values) // shape[0]
    return [nest(values[i : i + step], shape[1:]) for i in range(0, len(values), step)]


@st.composite
def request_tensor(draw: st.DrawFn, spec: TensorSpec) -> tuple[dict[str, Any], bytes]:
    """One request input for `spec` and its binary bytes: right, or wrong in a drawn field."""
    wrong = set(
        draw(st.sets(st.sampled_from(["name", "datatype", "shape", "count", "values", "size"])))
    )
    if draw(st.booleans()):
        wrong.clear()  # half the tensors are right in every field, so decoding gets to succeed
    name = draw(st.sampled_from(["other", "", spec.name.upper()])) if "name" in wrong else spec.name
    datatype = (
        draw(st.sampled_from([*DATATYPE_NAMES, "fp32", "STRING"]))
        if "datatype" in wrong
        else spec.datatype
    )
    if "shape" in wrong:
        shape = draw(st.lists(st.integers(-2, 5) | st.integers(), max_size=5))
    else:
        shape = [draw(st.integers(1, 3)) if d == -1 else d for d in spec.shape]
    count = math.prod(shape) if all(0 <= d <= 64 for d in shape) else 3
    count = min(count, 200) + (draw(st.sampled_from([-1, 1])) if "count" in wrong else 0)
    kind = draw(st.sampled_from(DATATYPE_NAMES)) if "values" in wrong else spec.datatype
    values = draw(
        st.lists(
            values_of(kind, wrong="values" in wrong), min_size=max(count, 0), max_size=max(count, 0)
        )
    )
    tensor: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype}
    binary = b""
    layout = draw(st.sampled_from(["flat", "nested", "binary", "binary", "both", "none", "json"]))
    if layout in ("flat", "nested", "both"):
        tensor["data"] = nest(values, shape) if layout == "nested" else values
    elif layout == "json":
        tensor["data"] = draw(st.lists(json_values, max_size=5))
    if layout in ("binary", "both"):
        binary = draw(binary_data(spec.datatype, values, count, wrong="values" in wrong))
        size = len(binary)
        if "size" in wrong:
            size = draw(
                st.sampled_from([len(binary) + 1, len(binary) - 1, -1, True, 1.5, "8", None])
            )
        tensor["parameters"] = {"binary_data_size": size}
    return tensor, binary


@st.composite
def binary_data(
    draw: st.DrawFn, datatype: str, values: list[Any], count: int, *, wrong: bool
) -> bytes:
    """Binary extension bytes: the values encoded right (when they can be), or any bytes."""
    if wrong:
        return draw(st.binary(max_size=64))
    if datatype == "BYTES":
        items = [str(v).encode("utf-8", "surrogatepass") for v in values]
        return to_binary(np.array(items, dtype=np.object_)) if items else b""
    dtype = np.dtype(DATATYPES[datatype][0])
    if datatype == "BOOL":
        return to_binary(np.array(values, dtype=np.bool_))
    # Random bytes: every bit pattern, NaNs and infinities of the float types among them.
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.integers(0, 256, max(count, 0) * dtype.itemsize, dtype=np.uint8).tobytes()


@st.composite
def requests_for(
    draw: st.DrawFn, specs: list[TensorSpec]
) -> tuple[list[RequestInput], bytes, bytes]:
    """A request's inputs, their binary bytes, and maybe bytes that belong to no input."""
    if draw(st.booleans()):  # one tensor per input, in any order
        chosen = draw(st.permutations(specs))
    else:  # some missing, some twice
        chosen = draw(st.lists(st.sampled_from(specs), min_size=1, max_size=3))
    drawn = [draw(request_tensor(spec)) for spec in chosen]
    inputs = [RequestInput.model_validate(tensor) for tensor, _ in drawn]
    trailing = draw(st.sampled_from([b"", b"", b"", b"\x00"]))
    return inputs, b"".join(raw for _, raw in drawn), trailing


@fuzz(DECODER_CASES)
@given(
    specs=st.lists(st.sampled_from(SPECS), min_size=1, max_size=3, unique_by=lambda s: s.name),
    data=st.data(),
)
def test_tensors_decode_or_are_refused(specs: list[TensorSpec], data: st.DataObject) -> None:
    inputs, binary, trailing = data.draw(requests_for(specs))
    tensors = decodes_or_refuses(
        decode_inputs, inputs, specs, binary + trailing, names=("inputs", f"{len(trailing)} bytes")
    )
    if tensors is None:
        return
    assert sorted(tensors) == sorted(s.name for s in specs)
    for tensor in inputs:
        array = tensors[tensor.name]
        spec = next(s for s in specs if s.name == tensor.name)
        assert list(array.shape) == tensor.shape
        if spec.datatype == "BYTES":
            assert array.dtype == np.object_ and all(
                isinstance(v, bytes) for v in array.reshape(-1)
            )
        else:
            assert array.dtype == DATATYPES[spec.datatype][0]
            assert array.dtype.kind != "f" or np.isfinite(array).all()


# --- whole inference on the published models ---------------------------------------------------

PARAMETERS = st.dictionaries(
    st.sampled_from(
        [
            "top_k",
            "mode",
            "max_tokens",
            "temperature",
            "seed",
            "binary_data_output",
            "content_type",
            "other",
        ]
    ),
    st.sampled_from(["next", "score", "generate", "np", ""])
    | st.integers(-2, 12)
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none(),
    max_size=4,
)


@pytest.mark.parametrize("model_name", ["cifar10-cnn", "ptb-lstm", "imdb-sentiment"])
def test_predict_answers_or_refuses(
    model_name: str, models: dict[str, Callable[[], LoadedModel]]
) -> None:
    """The friendly route's work (`LoadedModel.predict`) on fuzzed inputs and parameters."""
    model = models[model_name]()
    items = image_items if model_name == "cifar10-cnn" else texts(tokenizer_of(model).vocabulary)

    @fuzz(MODEL_CASES)
    @given(inputs=st.lists(items, min_size=1, max_size=3), parameters=st.just({}) | PARAMETERS)
    def check(inputs: list[Any], parameters: dict[str, Any]) -> None:
        outputs = decodes_or_refuses(
            model.predict, inputs, parameters, names=("inputs", "parameters")
        )
        if outputs is not None:
            assert len(outputs) == len(inputs)
            json.dumps([o.model_dump(mode="json") for o in outputs], allow_nan=False)

    check()


@pytest.mark.parametrize("model_name", ["cifar10-cnn", "ptb-lstm", "imdb-sentiment"])
def test_infer_answers_or_refuses(
    model_name: str, models: dict[str, Callable[[], LoadedModel]]
) -> None:
    """The OIP route's work (`run_inference`): decode, run the graph, encode the outputs."""
    model = models[model_name]()
    specs, outputs = model.task.signature()
    if model_name == "cifar10-cnn":  # the graph's own input: keep the batch small
        specs = [TensorSpec(name=s.name, datatype=s.datatype, shape=s.shape) for s in specs]
    output_names = st.sampled_from([o.name for o in outputs] + ["nope"])

    @fuzz(MODEL_CASES)
    @given(
        request=requests_for(specs),
        request_id=st.none() | any_text,
        parameters=st.none() | st.just({}) | PARAMETERS,
        wanted=st.none()
        | st.lists(
            st.fixed_dictionaries(
                {"name": output_names},
                optional={
                    "parameters": st.none()
                    | st.dictionaries(
                        st.just("binary_data"), st.booleans() | st.integers(0, 1), max_size=1
                    )
                },
            ),
            max_size=3,
        ),
    )
    def check(
        request: tuple[list[RequestInput], bytes, bytes],
        request_id: Any,
        parameters: Any,
        wanted: Any,
    ) -> None:
        inputs, binary, trailing = request
        body = InferenceRequest(id=request_id, inputs=inputs, parameters=parameters, outputs=wanted)
        response = decodes_or_refuses(
            run_inference,
            body,
            model,
            binary + trailing,
            names=("inputs", "outputs", "parameters", "text", f"{len(trailing)} bytes"),
        )
        if response is not None:
            event(f"answered, id {'none' if request_id is None else 'given'}")
            header = int(
                response.headers.get("inference-header-content-length", len(response.body))
            )
            answer = json.loads(response.body[:header])
            assert answer["model_name"] == model_name and answer["outputs"]

    check()
