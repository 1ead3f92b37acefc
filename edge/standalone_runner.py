"""The runner of an edge bundle, shipped in every bundle as `run.py`.

It needs onnxruntime and numpy (Pillow for images, `tokenizers` for a Hugging Face text model)
and nothing of modelfn: a device has only the bundle. Before it loads anything it checks every file of the bundle against `SHA256SUMS`, then it
reads the preprocessing, labels and graphs from `manifest.json`:

    python run.py cat.png                        # image classifier: top labels of each file
    echo "a truly wonderful film" | python run.py  # text classifier: text from stdin or args
    python run.py --json "a truly wonderful film"  # feature extractor: the text's embedding
    python run.py --mode generate "the company said"  # language model: next-words or generate
    python run.py --json --fp32 cat.png          # machine-readable; full-precision graph
    python run.py --self-test                    # the examples recorded at export, re-run

The text steps replay `modelfn.text.Tokenizer` (documented on `TextPreprocessing` in
`modelfn/artifact.py`), or run the version's `tokenizer.json` as `modelfn/tokenizer_file.py` does
(`TokenizerPreprocessing`); tests hold each equal to modelfn's on real text.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

SUMS_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"
LM_CHUNK = 64  # time steps per graph call: bounds the [batch, time, vocab] logits block
# A self-test embedding agrees when its distance to the one recorded is at most this share of
# the recorded one's length: another CPU or onnxruntime moves an fp32 embedding by about 1e-6 of
# it. An int8 one may also move by twice int8's own error on that text (its recorded distance to
# fp32's): x86 CPUs without VNNI saturate int16 sums that others do not, and ARM runs other
# kernels, each its own rounding of fp32. On the 560 IMDB test reviews, the fine-tuned 2-layer
# BERT encoder of docs/edge.md errs in int8 by 0.5% of the length (median; 1.9% at most), and
# two different reviews lie 3.8% apart or more.
EMBEDDING_TOLERANCE = 0.01
EMBEDDING_DECIMALS = 6  # an embedding as the self-test records it


class BundleError(Exception):
    """The bundle is incomplete, altered or cannot run this input; the message says which."""


# --- integrity ----------------------------------------------------------------------------------


def read_sums(text: str) -> dict[str, str]:
    """`SHA256SUMS` (sha256sum's format: `<hex>  <name>` a line) -> name -> hex digest."""
    sums = {}
    for line in text.splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest) or not name:
            raise BundleError(f"{SUMS_FILE}: malformed line {line!r}")
        sums[name] = digest
    return sums


def verify(folder: Path) -> dict[str, Any]:
    """Check every file in `folder` against SHA256SUMS, then return the parsed manifest."""
    sums_path = folder / SUMS_FILE
    if not sums_path.is_file():
        raise BundleError(f"{sums_path} is missing; this folder is not an edge bundle")
    sums = read_sums(sums_path.read_text(encoding="utf-8"))
    present = {p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS_FILE}
    if present - set(sums):
        raise BundleError(
            f"{SUMS_FILE} does not list {sorted(present - set(sums))}; refusing to load"
        )
    for name, digest in sums.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path} is missing; re-extract the bundle")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise BundleError(f"{path}: sha256 does not match {SUMS_FILE}; refusing to load")
    manifest: dict[str, Any] = json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8"))
    return manifest


# --- text preprocessing (modelfn.text.Tokenizer's steps) -----------------------------------------


class Tokenizer:
    """A manifest's text preprocessing plus its vocabulary (token -> id = position in the file)."""

    def __init__(self, spec: dict[str, Any], vocabulary: list[str]) -> None:
        self.spec = spec
        self.vocabulary = vocabulary
        self.ids = {token: i for i, token in enumerate(vocabulary)}
        self.substitutions = [
            (re.compile(s["pattern"]), s["replacement"]) for s in spec["substitutions"]
        ]
        self.number = re.compile(spec["number_pattern"]) if spec.get("number_pattern") else None

    def normalise(self, word: str) -> str:
        if word in self.ids:
            return word
        if self.spec["lowercase"]:
            word = word.lower()
            if word in self.ids:
                return word
        strip = self.spec.get("strip_chars") or ""
        word = word.strip(strip) if strip else word
        if word and self.number is not None and self.number.fullmatch(word):
            return str(self.spec["number_token"])
        return word

    def tokens(self, text: str) -> list[str]:
        for pattern, replacement in self.substitutions:
            text = pattern.sub(replacement, text)
        words = [w for raw in text.split() if (w := self.normalise(raw))]
        unknown = self.spec["unknown_token"]
        return [w if w in self.ids else unknown for w in words]

    def features(self, tokens: list[str]) -> list[int]:
        """Unigram ids, then every known 2..ngrams-gram; each once with `binary`."""
        ids = [self.ids[t] for t in tokens]
        for size in range(2, self.spec.get("ngrams", 1) + 1):
            for i in range(len(tokens) - size + 1):
                gram = self.ids.get(" ".join(tokens[i : i + size]))
                if gram is not None:
                    ids.append(gram)
        return list(dict.fromkeys(ids)) if self.spec.get("binary") else ids


# --- Hugging Face tokenizer (modelfn/tokenizer_file.py's steps) ---------------------------------


class TokenizerJson:
    """A manifest's `tokenizer` preprocessing plus its `tokenizer.json`, run by the `tokenizers`
    library: the file's pipeline adds the special tokens; truncation and padding come from the
    manifest, whatever the file's own sections say (as the function sets them)."""

    def __init__(self, spec: dict[str, Any], data: str) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(data)
        tokenizer.no_padding()  # padded below, to the batch's longest text or to max_length
        if spec["truncation"]:
            # transformers' `truncation=True, max_length=...`: special tokens kept, the text cut.
            tokenizer.enable_truncation(
                spec["max_length"],
                stride=0,
                strategy="longest_first",
                direction=spec["truncation_side"],
            )
        else:
            tokenizer.no_truncation()
        self.spec, self.tokenizer = spec, tokenizer

    def encode(self, texts: list[str]) -> list[tuple[list[int], list[int]]]:
        """Each text's ids and type ids, special tokens added; BundleError for an empty text (the
        function refuses it too) or one over max_length (only without truncation: the tokenizer
        cut the others)."""
        if any(not text.strip() for text in texts):
            raise BundleError("an empty text; give at least one word")
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=True)
        for text, encoding in zip(texts, encodings, strict=True):
            if len(encoding.ids) > self.spec["max_length"]:
                raise BundleError(
                    f"{len(encoding.ids)} tokens in {text[:40]!r}, over this model's maximum of "
                    f"{self.spec['max_length']}; shorten the text or split it"
                )
        return [(list(e.ids), list(e.type_ids)) for e in encodings]

    def feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The graph's int64 inputs for `texts`, padded with pad_id on padding_side."""
        spec, encoded = self.spec, self.encode(texts)
        longest = max((len(ids) for ids, _ in encoded), default=0)
        width = spec["max_length"] if spec["padding"] == "max_length" else longest
        ids = np.full((len(encoded), width), spec["pad_id"], dtype=np.int64)
        mask, types = np.zeros_like(ids), np.zeros_like(ids)
        for row, (tokens, type_ids) in enumerate(encoded):
            start = 0 if spec["padding_side"] == "right" else width - len(tokens)
            ids[row, start : start + len(tokens)] = tokens
            mask[row, start : start + len(tokens)] = 1
            types[row, start : start + len(tokens)] = type_ids
        names = spec["inputs"]
        feeds = {names["input_ids"]: ids}
        if names.get("attention_mask") is not None:
            feeds[names["attention_mask"]] = mask
        if names.get("token_type_ids") is not None:
            feeds[names["token_type_ids"]] = types
        return feeds


# --- image preprocessing (modelfn/images.py's steps) -------------------------------


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(shorter): aspect kept, the long side truncated."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def center_crop(pixels: np.ndarray, height: int, width: int, rounding: str = "round") -> np.ndarray:
    """[H, W, 3] -> [height, width, 3] at torchvision CenterCrop's offsets (`rounding` "round") or a
    Hugging Face image processor's ("floor"), zero-padded if smaller."""
    h, w = pixels.shape[:2]
    if height > h or width > w:
        dh, dw = max(height - h, 0), max(width - w, 0)
        pixels = np.pad(pixels, ((dh // 2, (dh + 1) // 2), (dw // 2, (dw + 1) // 2), (0, 0)))
        h, w = pixels.shape[:2]
    if rounding == "floor":
        top, left = (h - height) // 2, (w - width) // 2
    else:
        top, left = round((h - height) / 2.0), round((w - width) / 2.0)
    return np.ascontiguousarray(pixels[top : top + height, left : left + width])


def fit_image(image: Any, spec: dict[str, Any]) -> np.ndarray:
    """A decoded RGB PIL image -> uint8 [height, width, 3]: the shorter side to `resize` and the
    centre crop, or (no `resize`) straight to height x width, with PIL's `interpolation` filter."""
    from PIL import Image

    resample = {
        "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC,
        "nearest": Image.Resampling.NEAREST,
    }[spec.get("interpolation", "bilinear")]
    height, width, resize = spec["height"], spec["width"], spec.get("resize")
    if resize is None:
        if image.size != (width, height):
            image = image.resize((width, height), resample)
        return np.asarray(image, dtype=np.uint8)
    size = resized_size(image.size[0], image.size[1], resize)
    if image.size != size:
        image = image.resize(size, resample)
    rounding = spec.get("crop_rounding", "round")
    return center_crop(np.asarray(image, dtype=np.uint8), height, width, rounding)


def fit_pixels(pixels: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """RGB uint8 [H, W, 3] of any size -> the scheme's [height, width, 3]."""
    if spec.get("resize") is None and pixels.shape[:2] == (spec["height"], spec["width"]):
        return pixels
    from PIL import Image

    return fit_image(Image.fromarray(pixels), spec)


def image_tensor(pixels: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """RGB uint8 [H, W, 3] at the model's size -> x * scale -> (x - mean) / std per RGB channel ->
    channel order -> layout: float32 [1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC)."""
    # One float32 per level, rounded once from float64: for 1/255 exactly float32(x) / 255.
    levels = (np.arange(256, dtype=np.float64) * spec.get("scale", 1 / 255)).astype(np.float32)
    mean, std = np.asarray(spec["mean"], np.float32), np.asarray(spec["std"], np.float32)
    x = (levels[pixels] - mean) / std
    if spec.get("channel_order", "RGB") == "BGR":
        x = x[..., ::-1]
    if spec.get("layout", "NCHW") == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def load_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> upright RGB uint8 [H, W, 3] as decoded (`classify_pixels` fits it)."""
    from PIL import Image, ImageOps

    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))


def read_image_item(item: str) -> bytes:
    """A file path's bytes, else the item decoded as base64 (how examples travel in JSON)."""
    try:
        path = Path(item)
        if path.is_file():
            return path.read_bytes()
    except OSError:  # a base64 string is far longer than any file name
        pass
    try:
        return base64.b64decode(item, validate=True)
    except ValueError:
        raise BundleError(f"{item[:40]!r} is neither an image file nor base64 image data") from None


# --- the model ----------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def scored(logits: np.ndarray, scores: str) -> np.ndarray:
    """A classifier's logits as the scores its manifest declares (softmax, sigmoid, logits), as
    the function answers them (functions/tasks/classification.py)."""
    if scores == "sigmoid":
        e = np.exp(-np.abs(logits))
        return np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))  # type: ignore[no-any-return]
    if scores == "logits":
        return logits
    return softmax(logits)


class Bundle:
    """One graph of a bundle, loaded, with the manifest's preprocessing."""

    def __init__(
        self, folder: Path, manifest: dict[str, Any], precision: str, *, threads: int = 0
    ) -> None:
        import onnxruntime as ort

        self.folder, self.manifest, self.precision = folder, manifest, precision
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(folder / manifest["graphs"][precision]), options, providers=["CPUExecutionProvider"]
        )
        pre = manifest["preprocessing"]
        self.tokenizer = None
        self.tokenizer_json = None
        if pre["kind"] == "text":
            vocabulary = json.loads((folder / pre["vocabulary"]).read_text(encoding="utf-8"))
            self.tokenizer = Tokenizer(pre, vocabulary)
        elif pre["kind"] == "tokenizer":
            self.tokenizer_json = TokenizerJson(pre, (folder / pre["file"]).read_text("utf-8"))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feeds), strict=True))

    def first_output(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's first output (logits, or embeddings), whatever its name."""
        return self.run(feeds)[self.session.get_outputs()[0].name]

    # --- classifiers ---------------------------------------------------------------------------

    def classify_pixels(self, pixels: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """RGB uint8 [N, H, W, 3] or N arrays [H, W, 3] of any sizes (each fitted by the scheme)
        -> logits [N, classes]."""
        spec = self.manifest["preprocessing"]
        batch = np.concatenate([image_tensor(fit_pixels(p, spec), spec) for p in pixels])
        logits = self.session.get_outputs()[0].name  # the first output, whatever its name
        return self.run({self.manifest["inputs"][0]["name"]: batch})[logits]

    def classify_text(self, text: str) -> np.ndarray:
        """One text -> logits [1, classes]."""
        if self.tokenizer_json is not None:
            return self.first_output(self.tokenizer_json.feeds([text]))
        return self.token_logits(self.text_tokens(text))

    def embed(self, texts: list[str]) -> np.ndarray:
        """Texts -> embeddings float32 [N, dimensions] (the graph pools and normalises)."""
        assert self.tokenizer_json is not None
        return self.first_output(self.tokenizer_json.feeds(texts))

    def token_logits(self, tokens: list[str]) -> np.ndarray:
        """One text's tokens -> logits [1, classes] of its bag of n-grams."""
        assert self.tokenizer is not None
        ids = self.tokenizer.features(tokens)
        return self.run({self.manifest["inputs"][0]["name"]: np.asarray([ids], np.int64)})["logits"]

    def text_tokens(self, text: str) -> list[str]:
        assert self.tokenizer is not None
        tokens = self.tokenizer.tokens(text)
        if not tokens:
            raise BundleError(f"no words left in {text[:40]!r} after tokenisation")
        if len(tokens) > self.tokenizer.spec["max_tokens"]:
            raise BundleError(
                f"{len(tokens)} tokens, over this model's maximum of {self.tokenizer.spec['max_tokens']}"
            )
        return tokens

    # --- language model ------------------------------------------------------------------------

    def zero_state(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        layers, _, hidden = self.manifest["inputs"][1]["shape"]
        return np.zeros((layers, batch, hidden), np.float32), np.zeros(
            (layers, batch, hidden), np.float32
        )

    def lm_logits(
        self, ids: np.ndarray, state: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """ids int64 [batch, time] -> logits of the last step [batch, vocab] and the state after it."""
        last = np.empty(0, np.float32)
        h, c = state
        for start in range(0, ids.shape[1], LM_CHUNK):
            out = self.run({"tokens": ids[:, start : start + LM_CHUNK], "h0": h, "c0": c})
            h, c, last = out["hn"], out["cn"], out["logits"][:, -1]
        return last, (h, c)

    def context(self, text: str) -> np.ndarray:
        assert self.tokenizer is not None
        eos = self.tokenizer.ids[self.tokenizer.spec["eos_token"]]
        return np.asarray(
            [[eos, *(self.tokenizer.ids[t] for t in self.text_tokens(text))]], np.int64
        )

    def next_words(self, text: str, top_k: int = 5) -> list[tuple[str, float]]:
        assert self.tokenizer is not None
        logits, _ = self.lm_logits(self.context(text), self.zero_state(1))
        probabilities = softmax(logits[0].astype(np.float64))
        best = np.argsort(-probabilities, kind="stable")[:top_k]
        return [(self.tokenizer.vocabulary[i], float(probabilities[i])) for i in best]

    def generate(self, text: str, max_tokens: int = 20) -> list[str]:
        """Greedy continuation: the likeliest word each step, until <eos> or max_tokens."""
        assert self.tokenizer is not None
        eos = self.tokenizer.ids[self.tokenizer.spec["eos_token"]]
        logits, state = self.lm_logits(self.context(text), self.zero_state(1))
        words: list[str] = []
        for _ in range(max_tokens):
            token = int(logits[0].argmax())
            if token == eos:
                break
            words.append(self.tokenizer.vocabulary[token])
            logits, state = self.lm_logits(np.asarray([[token]], np.int64), state)
        return words

    # --- one input, any task -------------------------------------------------------------------

    def predict(self, item: str, *, mode: str = "next-words", top_k: int = 3) -> dict[str, Any]:
        """`item` is text, or for images a file path or a base64 PNG/JPEG."""
        task, labels = self.manifest["task"], self.manifest["labels"]
        if task == "language-modeling":
            if mode == "generate":
                return {"input": item, "generated": " ".join(self.generate(item))}
            return {
                "input": item,
                "next_words": [
                    {"word": w, "probability": p} for w, p in self.next_words(item, top_k)
                ],
            }
        if task == "feature-extraction":
            vector = self.embed([item])[0]
            return {
                "input": item if len(item) < 200 else item[:197] + "...",
                "embedding": [float(v) for v in vector],
            }
        if task == "image-classification":
            data = read_image_item(item)
            logits = self.classify_pixels(load_image(data)[None])
        else:
            logits = self.classify_text(item)
        probabilities = scored(logits[0].astype(np.float64), self.manifest.get("scores", "softmax"))
        best = np.argsort(-probabilities, kind="stable")[:top_k]
        return {
            "input": item if len(item) < 200 else item[:197] + "...",
            "label": labels[best[0]],
            "top_k": [{"label": labels[i], "score": float(probabilities[i])} for i in best],
        }

    def answer(self, item: str, mode: str) -> str:
        """The one value a self-test compares: the label, the top next word, the generation, or
        the embedding as JSON (rounded to EMBEDDING_DECIMALS)."""
        result = self.predict(item, mode=mode)
        if "label" in result:
            return str(result["label"])
        if "embedding" in result:
            return json.dumps([round(v, EMBEDDING_DECIMALS) for v in result["embedding"]])
        return (
            str(result["generated"]) if mode == "generate" else str(result["next_words"][0]["word"])
        )


def distance(vector: np.ndarray, reference: np.ndarray) -> float:
    """|vector - reference| as a share of |reference|."""
    gap = float(np.linalg.norm(vector - reference))
    return gap / max(float(np.linalg.norm(reference)), 1e-12)


def open_bundle(folder: Path, *, fp32: bool = False) -> Bundle:
    """Verify the extracted bundle in `folder`, then load its int8 graph (fp32 if told or alone)."""
    manifest = verify(folder)
    return Bundle(
        folder, manifest, "fp32" if fp32 or not manifest["graphs"].get("int8") else "int8"
    )


def self_test(bundle: Bundle) -> list[str]:
    """Re-run the examples recorded at export; the list of mismatches (empty when all agree)."""
    problems = []
    for case in bundle.manifest["self_test"]:
        got = bundle.answer(case["input"], case["mode"])
        want = case["expected"][bundle.precision]
        if bundle.manifest["task"] == "feature-extraction":
            recorded = np.asarray(json.loads(want))
            allowed = EMBEDDING_TOLERANCE
            if bundle.precision == "int8":
                allowed += 2 * distance(np.asarray(json.loads(case["expected"]["fp32"])), recorded)
            moved = distance(np.asarray(json.loads(got)), recorded)
            if moved > allowed:
                problems.append(
                    f"{case['input'][:40]!r}: embedding {moved:.2%} of its length away from the "
                    f"one recorded at export, over the {allowed:.2%} allowed"
                )
        elif got != want:
            problems.append(
                f"{case['input'][:40]!r} ({case['mode']}): got {got!r}, expected {want!r}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run this edge bundle's model on files, text or stdin."
    )
    parser.add_argument(
        "inputs", nargs="*", help="image files, or texts (default: one text per stdin line)"
    )
    parser.add_argument(
        "--mode", choices=["next-words", "generate"], default="next-words", help="language models"
    )
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object per input")
    parser.add_argument(
        "--fp32", action="store_true", help="the full-precision graph even where int8 ships"
    )
    parser.add_argument(
        "--self-test", action="store_true", help="re-run the examples recorded at export"
    )
    args = parser.parse_args(argv)
    try:
        bundle = open_bundle(Path(__file__).resolve().parent, fp32=args.fp32)
        if args.self_test:
            problems = self_test(bundle)
            for problem in problems:
                print(f"self-test mismatch: {problem}", file=sys.stderr)
            print(
                f"self-test ({bundle.precision}): {len(bundle.manifest['self_test']) - len(problems)}/{len(bundle.manifest['self_test'])} agree"
            )
            return 1 if problems else 0
        items = args.inputs or [line.strip() for line in sys.stdin if line.strip()]
        for item in items:
            result = bundle.predict(item, mode=args.mode, top_k=args.top_k)
            if args.json:
                print(json.dumps({"precision": bundle.precision, **result}))
            elif "label" in result:
                scores = ", ".join(f"{t['label']} {t['score']:.3f}" for t in result["top_k"])
                print(f"{result['input']}: {result['label']} ({scores})")
            elif "embedding" in result:
                vector = result["embedding"]
                shown = " ".join(f"{v:.4f}" for v in vector[:8])
                more = " ..." if len(vector) > 8 else ""
                print(
                    f"{result['input']}: [{shown}{more}] ({len(vector)} dimensions; --json for all)"
                )
            elif "generated" in result:
                print(f"{result['input']} {result['generated']}")
            else:
                words = ", ".join(
                    f"{w['word']} {w['probability']:.3f}" for w in result["next_words"]
                )
                print(f"{result['input']} -> {words}")
    except BundleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
