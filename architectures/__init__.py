"""Model definitions, one file each; they import torch and nothing from training, serving or AWS.

`ARCHITECTURES` maps a registry entry's `architecture` (the name stored in every manifest) to
its constructor-arguments dataclass and its nn.Module; `load_torch_model` rebuilds a published
version's eager model from its manifest and safetensors weights (`build_torch_model` then
`load_weights`, which the container function calls on bytes it has verified itself). All stay
light (torch, safetensors, pydantic), so a server of the eager model imports nothing else of
training/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from architectures import cifar10_cnn, ngram_classifier, ptb_lstm
from modelfn.artifact import WEIGHTS_FILE, ArtifactError, Manifest, verify_artifact
from training.config import build_dataclass


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


def build_torch_model(manifest: Manifest, *, where: str) -> nn.Module:
    """The manifest's architecture with its recorded constructor arguments, weights not loaded.

    `where` names the manifest in errors (an unknown architecture, a bad constructor argument).
    """
    arch = ARCHITECTURES.get(manifest.architecture.module)
    if arch is None:
        raise ArtifactError(
            f"{where}: architecture {manifest.architecture.module!r} is not one of "
            f"{', '.join(sorted(ARCHITECTURES))} (architectures/__init__.py)"
        )
    config: Any = build_dataclass(arch.config, manifest.architecture.config, where=where)
    return arch.build(config)


def load_weights(model: nn.Module, weights: bytes, *, where: str) -> nn.Module:
    """Set every parameter and buffer of `model` from safetensors `weights`; returns it in eval mode.

    Strict: a tensor the model lacks, or a model tensor the file lacks, raises ArtifactError
    naming them. safetensors' `save_model` stores tied tensors once (ptb-lstm's decoder is its
    embedding), so a model tensor missing from the file is fine when it shares memory with one
    that was loaded. Parsing bytes, never a pickle.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        state = load(weights)
    except SafetensorError as exc:
        raise ArtifactError(f"{where}: not a safetensors file: {exc}") from exc
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a shape that differs from the architecture's
        raise ArtifactError(f"{where}: weights do not fit {type(model).__name__}: {exc}") from exc
    tensors = model.state_dict()
    loaded = {tensors[name].data_ptr() for name in state if name in tensors}
    untied = sorted(name for name in missing if tensors[name].data_ptr() not in loaded)
    if untied or unexpected:
        raise ArtifactError(
            f"{where}: weights do not match {type(model).__name__}: missing {untied or 'none'}, "
            f"unexpected {sorted(unexpected) or 'none'}; re-export the artifact with this code"
        )
    return model.eval()


def load_torch_model(folder: Path) -> nn.Module:
    """Rebuild the trained nn.Module (eval mode) from an artifact folder: manifest + safetensors.

    Verifies every file's sha256 first (raises modelfn.artifact.IntegrityError on a mismatch);
    never unpickles anything.
    """
    folder = Path(folder)
    manifest = verify_artifact(folder)
    model = build_torch_model(manifest, where=f"{folder}/manifest.json")
    path = folder / WEIGHTS_FILE
    return load_weights(model, path.read_bytes(), where=str(path))
