"""Model definitions, one file each; they import torch and nothing from training, serving or AWS.

`ARCHITECTURES` maps a registry entry's `architecture` (the name stored in every manifest) to
its constructor-arguments dataclass and its nn.Module; `load_torch_model` rebuilds a published
version's eager model from its manifest and safetensors weights. Both stay light (torch,
safetensors, pydantic), so a server of the eager model imports nothing else of training/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from modelfn.artifact import WEIGHTS_FILE, ArtifactError, verify_artifact
from training.config import build_dataclass
from training.models import cifar10_cnn, ngram_classifier, ptb_lstm


@dataclass(frozen=True)
class ArchitectureSpec:
    config: type  # dataclass of constructor arguments, stored in manifest.architecture.config
    build: Callable[[Any], nn.Module]


ARCHITECTURES: dict[str, ArchitectureSpec] = {
    "cifar10_cnn": ArchitectureSpec(
        config=cifar10_cnn.Cifar10CNNConfig, build=cifar10_cnn.Cifar10CNN
    ),
    "ptb_lstm": ArchitectureSpec(config=ptb_lstm.PtbLstmConfig, build=ptb_lstm.PtbLstm),
    "ngram_classifier": ArchitectureSpec(
        config=ngram_classifier.NgramClassifierConfig, build=ngram_classifier.NgramClassifier
    ),
}


def load_torch_model(folder: Path) -> nn.Module:
    """Rebuild the trained nn.Module (eval mode) from an artifact folder: manifest + safetensors.

    Verifies every file's sha256 first (raises modelfn.artifact.IntegrityError on a mismatch);
    never unpickles anything.
    """
    from safetensors.torch import load_model

    folder = Path(folder)
    manifest = verify_artifact(folder)
    arch = ARCHITECTURES.get(manifest.architecture.module)
    if arch is None:
        raise ArtifactError(
            f"{folder}: architecture {manifest.architecture.module!r} is not one of "
            f"{', '.join(sorted(ARCHITECTURES))} (training/models/__init__.py)"
        )
    config: Any = build_dataclass(
        arch.config, manifest.architecture.config, where=f"{folder}/manifest.json"
    )
    model = arch.build(config)
    load_model(model, str(folder / WEIGHTS_FILE), strict=True)
    return model.eval()
