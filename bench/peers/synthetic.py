"""The size sweep's models (bench/sweep.py): a BERT text classifier of about N MB, random weights,
brought in with `modelfn import`'s code as a user brings in a Hugging Face folder.

The folder is what save_pretrained writes (tests/support/hf_folders.py: a BertConfig, seeded
weights, the WordPiece tokenizer trained on the real IMDB training reviews); `import_model` exports
it (as model.onnx + model.onnx.data past the artifact's external-data threshold), runs the parity
gate on real IMDB test reviews and checks the budget, so the artifact is exactly what a user
publishes. Only the hidden size changes with the target: 4 layers, heads of 64, an intermediate
of 4 x hidden (BERT's ratio). Weights' values do not change what is timed.

A generated version is kept under build/sweep/models/, keyed by the size and the shape, so a
rerun skips the export (a 2 GB model takes minutes and several GB of memory to export).

It lives beside the peers because it is torch code (pyproject.toml's `torch-where-it-belongs`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from modelfn.registry import REPO_ROOT, ProvisionedConcurrencyEntry, ServingEntry

MODELS = REPO_ROOT / "build" / "sweep" / "models"
TASK = "text-classification"
LAYERS = 4
HEAD_DIM = 64  # hidden sizes are multiples of it: heads = hidden / 64, as in BERT-base
VOCAB = 8000  # tests/support/hf_folders.VOCAB_SIZE: the tokenizer's
POSITIONS = 128  # hf_folders.MAX_LENGTH
LABELS = 2
EXAMPLES = 2  # real IMDB test reviews the import's parity gate runs on
# The largest function Lambda allows, with init taken out of the request path: the sweep measures
# how the bytes move, not whether the budget would pass a default function (it would refuse a
# 2 GB model on memory, /tmp and the 10 s init; modelfn import says so, naming each setting).
SERVING = ServingEntry(
    memory_mb=10240,
    ephemeral_storage_mb=10240,
    timeout_s=29,  # the HTTP API waits 30 s at most
    provisioned_concurrency=ProvisionedConcurrencyEntry(min=1, max=1),
)


def bert_parameters(hidden: int, layers: int = LAYERS) -> int:
    """Parameters of BertForSequenceClassification with these sizes (intermediate 4 x hidden)."""
    inner = 4 * hidden
    embeddings = (VOCAB + POSITIONS + 2) * hidden + 2 * hidden  # word, position, type; LayerNorm
    layer = 4 * (hidden * hidden + hidden) + 2 * hidden * inner + inner + hidden + 4 * hidden
    pooler, classifier = hidden * hidden + hidden, hidden * LABELS + LABELS
    return embeddings + layers * layer + pooler + classifier


def hidden_for(target_mb: float) -> int:
    """The multiple of HEAD_DIM whose fp32 weights come closest to `target_mb` (1 MB = 1e6 B)."""
    candidates = range(HEAD_DIM, 64 * HEAD_DIM + 1, HEAD_DIM)
    return min(candidates, key=lambda h: abs(4 * bert_parameters(h) / 1e6 - target_mb))


def model_name(size_mb: int) -> str:
    return f"sweep-{size_mb}mb"


def synthetic_version(size_mb: int, *, log: Callable[[str], None] = print) -> Path:
    """The imported version folder of the `size_mb` model: from build/ if made before, else
    built from a config, imported with `import_model` and kept there."""
    hidden = hidden_for(size_mb)
    home = MODELS / f"{size_mb}mb-h{hidden}-l{LAYERS}"
    done = home / "version.txt"  # written last: a folder without it is a generation cut short
    if done.is_file():
        return home / done.read_text(encoding="utf-8").strip()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    name = model_name(size_mb)
    log(f"{name}: BERT, {LAYERS} layers, hidden {hidden}: {4 * bert_parameters(hidden) / 1e6:.0f} "
        "MB of fp32 weights; building and importing it (once; kept under build/sweep/)")  # fmt: skip
    version = _import(home, name, hidden, log)
    done.write_text(str(version.relative_to(home)) + "\n", encoding="utf-8")
    shutil.rmtree(home / "source")  # the Hugging Face folder: the version holds what is served
    return version


def _import(home: Path, name: str, hidden: int, log: Callable[[str], None]) -> Path:
    from importing import import_model
    from tests.support.hf_folders import imdb_texts, review_files, save_bert, wordpiece_tokenizer

    tokenizer = wordpiece_tokenizer(imdb_texts("train"))
    folder = save_bert(
        home / "source" / name,
        tokenizer,
        classifier=True,
        hidden_size=hidden,
        num_hidden_layers=LAYERS,
        num_attention_heads=hidden // HEAD_DIM,
        intermediate_size=4 * hidden,
    )
    return import_model(
        str(folder),
        name=name,
        task=TASK,
        out_dir=home / "build",
        examples=review_files(home / "source" / "reviews", EXAMPLES),
        serving=SERVING,
        log=log,
    )
