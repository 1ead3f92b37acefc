"""The imported model the benchmark measures beside the trained ones: a ResNet-18 brought in
with `modelfn import`, as a user brings in a torch module trained elsewhere.

The module is tests/support/resnet.py (torchvision's ResNet-18 layout, 10 classes), named by
reference as a user names their own code; its weights are seeded random ones (the benchmark
times the graph, whose cost does not depend on the values), saved as safetensors. It is imported
with `importing.import_model`, the code `modelfn import` runs (export, parity gate on real
CIFAR-10 test images, budget), published into a store of its own under build/, and registered
in a registry built in memory from models.toml plus the entry `modelfn import` would append, so
neither the repository's store nor its models.toml changes.

It lives beside the peers because it is torch code (the weights are made with torch), and torch
stays in the torch benchmarks (pyproject.toml's `torch-where-it-belongs` contract).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from modelfn.registry import REPO_ROOT, Registry, ServingEntry, parse_registry, registry_path

IMPORTED_RESNET = "resnet18-imported"
REFERENCE = "tests.support.resnet:resnet18"  # importable from the repository root
FACTORY_ARGS = {"num_classes": 10}
DATA_SUBDIR = "cifar-10-batches-py"  # its test inputs: real CIFAR-10 test images
# CIFAR-10's training-set statistics (training/data/cifar10.py): the scheme it declares.
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
WORK = REPO_ROOT / "build" / "bench-imported"
EXAMPLES = 4  # real test images the import's parity gate runs on


def import_resnet(
    work: Path = WORK, *, log: Callable[[str], None] = print
) -> tuple[Registry, Path]:
    """(registry with the imported entry, the store folder holding its one published version)."""
    import torch  # here, not at the top: bench/run.py reads this module's names without torch
    from safetensors.torch import save_file

    from importing import ImageOptions, import_model
    from importing.torch_module import build_module
    from modelfn.store import LocalStore, publish_artifact
    from tools.models_toml import imported_entry
    from training.data.cifar10 import load_cifar10
    from training.data.location import data_root_for

    shutil.rmtree(work, ignore_errors=True)  # one version per run: the alias names it
    work.mkdir(parents=True)
    torch.manual_seed(0)
    module = build_module(REFERENCE, FACTORY_ARGS)
    weights = work / "resnet18.safetensors"
    save_file(module.state_dict(), str(weights))
    data = load_cifar10(data_root_for(None, DATA_SUBDIR) / DATA_SUBDIR)
    examples = []
    for i in range(EXAMPLES):
        path = work / f"test-{i}.png"
        path.write_bytes(_png(data.test.images[i]))
        examples.append(path)
    folder = import_model(
        REFERENCE,
        name=IMPORTED_RESNET,
        task="image-classification",
        out_dir=work / "build",
        weights=weights,
        factory_args=FACTORY_ARGS,
        labels=list(data.label_names),
        image=ImageOptions(size=(32, 32), mean=MEAN, std=STD),
        examples=examples,
        log=log,
    )
    store = work / "store"
    publish_artifact(LocalStore(store), folder)
    text = registry_path().read_text(encoding="utf-8")
    entry = imported_entry(
        IMPORTED_RESNET, "image-classification", f"{REFERENCE}, seeded weights", ServingEntry()
    )
    return parse_registry(f"{text.rstrip()}\n\n{entry}", source="models.toml + bench"), store


def _png(chw_uint8: object) -> bytes:
    import base64

    from tools.evaluate import png_base64

    return base64.b64decode(png_base64(chw_uint8))
