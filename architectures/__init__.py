"""The model architectures (floor 2): one file per nn.Module with its constructor-arguments
dataclass. They import torch and the core (modelfn/), nothing from training, serving or AWS, so
training and the torch container function stand on the same definitions.

`ARCHITECTURES` maps a registry entry's `architecture` (the name stored in every manifest) to
its constructor-arguments dataclass and its nn.Module; `model_config` builds that dataclass from
a TOML or manifest table, naming a bad key; `load_torch_model` rebuilds a published version's
eager model from its manifest and safetensors weights (`build_torch_model` then `load_weights`,
which the container function calls on bytes it has verified itself). All stay light (torch,
safetensors, pydantic).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from torch import nn

from architectures import cifar10_cnn, ngram_classifier, ptb_lstm
from modelfn.artifact import WEIGHTS_FILE, ArtifactError, Manifest, verify_artifact


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


class ModelConfigError(ValueError):
    """Constructor arguments that do not fit an architecture; the message names the key.

    Training turns it into its ConfigError (a training config's `[model]` table), serving into an
    ArtifactError (a manifest's `architecture.config`).
    """


def model_config(arch: ArchitectureSpec, values: dict[str, Any], *, where: str) -> Any:
    """`arch`'s constructor-arguments dataclass from `values`, rejecting unknown keys and wrong
    types by name; `where` names the table in the message."""
    known = {f.name for f in dataclasses.fields(arch.config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ModelConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} for {arch.config.__name__}; "
            f"known: {', '.join(sorted(known))}"
        )
    try:
        return TypeAdapter(arch.config).validate_python(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{arch.config.__name__}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        )
        raise ModelConfigError(f"{where}: {problems}") from exc


def build_torch_model(manifest: Manifest, *, where: str) -> nn.Module:
    """The manifest's architecture with its recorded constructor arguments, weights not loaded.

    `where` names the manifest in errors (an unknown architecture, a bad constructor argument).
    """
    recorded = manifest.architecture
    if recorded is None:
        raise ArtifactError(
            f"{where}: {manifest.name} {manifest.version} was imported, and its code stayed with "
            "whoever imported it: it has no architecture to rebuild, so it serves with "
            'onnxruntime only (serving.runtime = "onnxruntime" in models.toml)'
        )
    arch = ARCHITECTURES.get(recorded.module)
    if arch is None:
        raise ArtifactError(
            f"{where}: architecture {recorded.module!r} is not one of "
            f"{', '.join(sorted(ARCHITECTURES))} (architectures/__init__.py)"
        )
    try:
        config = model_config(arch, recorded.config, where=where)
    except ModelConfigError as exc:
        raise ArtifactError(f"{exc}; re-export the artifact with this code") from exc
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
