"""A Hugging Face `save_pretrained` folder as an import source: which files it has, read and hashed
before any of them is used, and what the task needs of them.

The folder holds `config.json` (the architecture and its sizes, `id2label`), the weights
(`model.safetensors`, or a `pytorch_model.bin` that transformers reads with
`torch.load(weights_only=True)`; sharded checkpoints with their index too) and what turns inputs
into tensors: `tokenizer.json` (with `tokenizer_config.json`) for text, `preprocessor_config.json`
for images. No code is run from it: a config that names custom code (`auto_map`) is refused, so
transformers' own classes are the only ones built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importing.errors import ImportRefused
from importing.tasks import TEXT_TASKS
from modelfn.artifact import TOKENIZER_FILE, sha256_file

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
# Files AutoTokenizer reads beside tokenizer.json: special tokens, max length, padding side.
TOKENIZER_SIDE_FILES = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
# What save_pretrained writes for the weights, one file or shards with their index.
WEIGHT_PATTERNS = (
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model-*-of-*.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class HfFolder:
    path: Path
    config: dict[str, Any]  # config.json as read
    weights: list[Path]
    tokenizer: Path | None  # tokenizer.json, text tasks
    preprocessor: dict[str, Any] | None  # preprocessor_config.json, image-classification
    sha256: dict[str, str]  # every file the import reads, by name

    @property
    def architecture(self) -> str:
        """config.json's class name (e.g. BertForSequenceClassification), or its model_type."""
        names = self.config.get("architectures") or []
        return str(names[0]) if names else str(self.config.get("model_type"))


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_FILE).is_file()


def read_folder(path: Path, task: str) -> HfFolder:
    """The folder's files for `task`, each hashed; ImportRefused naming what is missing or wrong."""
    if not (path / CONFIG_FILE).is_file():
        raise ImportRefused(
            f"{path} has no {CONFIG_FILE}: a Hugging Face folder is what model.save_pretrained("
            "FOLDER) writes (config.json and the weights), with the tokenizer's or image "
            "processor's save_pretrained(FOLDER) beside it"
        )
    config = _json(path / CONFIG_FILE)
    if "auto_map" in config:
        raise ImportRefused(
            f"{path / CONFIG_FILE} names custom code (auto_map: {config['auto_map']}); modelfn "
            "imports the architectures transformers itself has, never code from a model folder. "
            "Export the model to ONNX yourself and import the .onnx file (--task tensor), or "
            "wrap it as a torch module (package.module:callable)"
        )
    if "model_type" not in config:
        raise ImportRefused(
            f"{path / CONFIG_FILE} has no model_type: it is not a transformers config; save it "
            "with model.save_pretrained(FOLDER)"
        )
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in path.glob(pattern)})
    if not weights:
        raise ImportRefused(
            f"{path} has no weights: expected model.safetensors (or pytorch_model.bin, or their "
            "shards with an index), as model.save_pretrained(FOLDER) writes them"
        )
    read = [path / CONFIG_FILE, *weights]
    tokenizer = preprocessor = None
    if task in TEXT_TASKS:
        tokenizer = path / TOKENIZER_FILE
        if not tokenizer.is_file():
            raise ImportRefused(
                f"{task} needs the model's tokenizer and {path} has no {TOKENIZER_FILE}: save "
                "it beside the model with AutoTokenizer.from_pretrained(...).save_pretrained("
                "FOLDER) (a fast tokenizer writes tokenizer.json); the function runs that file"
            )
        read += [tokenizer, *(p for n in TOKENIZER_SIDE_FILES if (p := path / n).is_file())]
    elif task == "image-classification":
        if not (path / PREPROCESSOR_FILE).is_file():
            raise ImportRefused(
                f"image-classification needs how images become pixel_values and {path} has no "
                f"{PREPROCESSOR_FILE}: save the image processor beside the model with "
                "AutoImageProcessor.from_pretrained(...).save_pretrained(FOLDER)"
            )
        preprocessor = _json(path / PREPROCESSOR_FILE)
        read.append(path / PREPROCESSOR_FILE)
    return HfFolder(
        path=path,
        config=config,
        weights=weights,
        tokenizer=tokenizer,
        preprocessor=preprocessor,
        sha256={p.name: sha256_file(p) for p in read},
    )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ImportRefused(f"{path} is not a JSON file: {exc}") from exc
    if not isinstance(data, dict):
        raise ImportRefused(f"{path} must hold a JSON object")
    return data
