"""The imported models the benchmark measures beside the trained ones, each brought in with
`modelfn import`'s code as a user brings in a model trained elsewhere:

- resnet18-imported, a torch module: tests/support/resnet.py (torchvision's ResNet-18 layout, 10
  classes), named by reference as a user names their own code, its weights saved as safetensors;
  fed real CIFAR-10 test images;
- bert-imported, a Hugging Face folder: a BERT sequence classifier the size of BERT-mini (Turc et
  al. 2019, "Well-Read Students Learn Better": 4 layers, hidden 256, 4 heads) built from a
  BertConfig, with a WordPiece tokenizer trained on the real IMDB training reviews, both saved
  with save_pretrained (tests/support/hf_folders.py, the folders the import tests use); fed real
  IMDB test reviews.

Weights are seeded random ones: the benchmark times the graph, whose cost does not depend on the
values. Each model is imported with `importing.import_model`, the code `modelfn import` runs
(export, parity gate on real test inputs, budget), published into one store of the benchmark's
own under build/, and registered in a registry built in memory from models.toml plus the entries
`modelfn import` would append, so neither the repository's store nor its models.toml changes.

It lives beside the peers because it is torch code (the weights are made with torch), and torch
stays in the torch benchmarks (pyproject.toml's `torch-where-it-belongs` contract).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelfn.registry import REPO_ROOT, Registry, ServingEntry, parse_registry, registry_path

WORK = REPO_ROOT / "build" / "bench-imported"

# What a source builder hands import_model: the source and its options (weights, labels, ...).
Source = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class ImportedModel:
    """One imported row: what `modelfn import` is given and what the benchmark feeds it."""

    task: str
    data_subdir: str  # the data set under ../shared/data its test inputs come from
    reference: str  # what its import record names: the factory, or the folder's name
    description: str  # the registry entry's
    source: Callable[[Path], Source]  # writes the source into a work folder


# --- resnet18-imported: a torch module and its weights -----------------------------------------

RESNET_FACTORY = "tests.support.resnet:resnet18"  # importable from the repository root
RESNET_ARGS = {"num_classes": 10}
CIFAR10 = "cifar-10-batches-py"
# CIFAR-10's training-set statistics (training/data/cifar10.py): the scheme it declares.
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
TEST_IMAGES = 4  # real test images the import's parity gate runs on


def resnet_source(work: Path) -> Source:
    """The factory with seeded safetensors weights, and real CIFAR-10 test images as examples."""
    import torch  # here, not at the top: bench/run.py reads this module's names without torch
    from safetensors.torch import save_file

    from importing import ImageOptions
    from importing.torch_module import build_module
    from training.data.cifar10 import load_cifar10
    from training.data.location import data_root_for

    torch.manual_seed(0)
    weights = work / "resnet18.safetensors"
    save_file(build_module(RESNET_FACTORY, RESNET_ARGS).state_dict(), str(weights))
    data = load_cifar10(data_root_for(None, CIFAR10) / CIFAR10)
    examples = []
    for i in range(TEST_IMAGES):
        path = work / f"test-{i}.png"
        path.write_bytes(_png(data.test.images[i]))
        examples.append(path)
    return RESNET_FACTORY, {
        "weights": weights,
        "factory_args": RESNET_ARGS,
        "labels": list(data.label_names),
        "image": ImageOptions(size=(32, 32), mean=MEAN, std=STD),
        "examples": examples,
    }


def _png(chw_uint8: object) -> bytes:
    import base64

    from tools.evaluate import png_base64

    return base64.b64decode(png_base64(chw_uint8))


# --- bert-imported: a Hugging Face save_pretrained folder ---------------------------------------

BERT_FOLDER = "bert-mini-imdb"  # the folder's name: what the import record names
# BERT-mini's sizes; its positions are the tokenizer's 128 (hf_folders.MAX_LENGTH), so reviews
# longer than that are cut, as a 128-token BERT serving deployment cuts them.
BERT_SIZE = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,  # 4 x hidden, as in BERT
}
TEST_REVIEWS = 2  # real test reviews the import's parity gate runs on (each alone and batched)


def bert_source(work: Path) -> Source:
    """The BERT classifier's folder beside its IMDB-trained tokenizer, and real test reviews."""
    from tests.support.hf_folders import imdb_texts, review_files, save_bert, wordpiece_tokenizer

    tokenizer = wordpiece_tokenizer(imdb_texts("train"))
    folder = save_bert(work / BERT_FOLDER, tokenizer, classifier=True, **BERT_SIZE)
    return str(folder), {"examples": review_files(work / "reviews", TEST_REVIEWS)}


# --- the rows, and the import they share --------------------------------------------------------

IMPORTED_RESNET, IMPORTED_BERT = "resnet18-imported", "bert-imported"
IMPORTED: dict[str, ImportedModel] = {
    IMPORTED_RESNET: ImportedModel(
        task="image-classification",
        data_subdir=CIFAR10,
        reference=RESNET_FACTORY,
        description=f"{RESNET_FACTORY}, seeded weights",
        source=resnet_source,
    ),
    IMPORTED_BERT: ImportedModel(
        task="text-classification",
        data_subdir="imdb",
        reference=BERT_FOLDER,
        description="BERT-mini sequence classifier (Hugging Face folder), seeded weights",
        source=bert_source,
    ),
}


def import_models(
    names: Sequence[str], work: Path = WORK, *, log: Callable[[str], None] = print
) -> tuple[Registry, Path]:
    """(registry with the imported entries, the store folder holding one version of each)."""
    from importing import import_model
    from modelfn.store import LocalStore, publish_artifact
    from tools.models_toml import imported_entry

    shutil.rmtree(work, ignore_errors=True)  # one version per run: the alias names it
    store = work / "store"
    entries = []
    for name in names:
        model = IMPORTED[name]
        (work / name).mkdir(parents=True)
        log(f"{name}: importing {model.reference} with modelfn import's code")
        source, options = model.source(work / name)
        folder = import_model(
            source, name=name, task=model.task, out_dir=work / name / "build", log=log, **options
        )
        publish_artifact(LocalStore(store), folder)
        entries.append(imported_entry(name, model.task, model.description, ServingEntry()))
    text = registry_path().read_text(encoding="utf-8").rstrip()
    return parse_registry("\n\n".join([text, *entries]), source="models.toml + bench"), store
