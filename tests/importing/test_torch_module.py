"""A torch source's refusals: the factory, the weights file and how its keys fit the module.

Each stops before the export, so nothing is written (checked on every one).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file, save_model

from importing import ImageOptions, ImportRefused, import_model
from modelfn.artifact import verify_artifact
from tests.support.import_sources import CIFAR_IMAGE, RESNET, nothing_written, trained_resnet
from tests.support.small_models import tied


def refused(
    tmp_path: Path,
    source: str,
    *,
    weights: Path | None,
    factory_args: Mapping[str, Any] | None = None,
    task: str = "image-classification",
    image: ImageOptions | None = CIFAR_IMAGE,
) -> str:
    """The message of the refusal, after checking that nothing was written."""
    out = tmp_path / "out"
    labels = [f"c{i}" for i in range(10)] if task == "image-classification" else None
    with pytest.raises(ImportRefused) as caught:
        import_model(
            source,
            name="refused",
            task=task,
            out_dir=out,
            weights=weights,
            factory_args=factory_args,
            labels=labels,
            image=image if task == "image-classification" else None,
        )
    assert nothing_written(out)
    return str(caught.value)


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    return trained_resnet().state_dict()


def test_a_factory_that_cannot_be_imported(tmp_path: Path, resnet_weights: dict[str, Path]) -> None:
    message = refused(tmp_path, "no_such_package.models:resnet18", weights=resnet_weights["pt"])
    assert "cannot import no_such_package.models (ModuleNotFoundError" in message
    assert "PYTHONPATH" in message


def test_a_factory_the_module_does_not_have(
    tmp_path: Path, resnet_weights: dict[str, Path]
) -> None:
    message = refused(tmp_path, "tests.support.resnet:resnet99", weights=resnet_weights["pt"])
    assert "tests.support.resnet has no resnet99" in message


def test_a_factory_that_fails_to_build(tmp_path: Path, resnet_weights: dict[str, Path]) -> None:
    message = refused(
        tmp_path,
        "tests.support.small_models:fails_to_build",
        weights=resnet_weights["pt"],
        factory_args={"width": 3},
    )
    assert "fails_to_build(**{'width': 3}) raised ValueError: width 3 is not supported" in message
    assert "--factory-args" in message


def test_a_factory_that_returns_no_module(tmp_path: Path, resnet_weights: dict[str, Path]) -> None:
    message = refused(
        tmp_path, "tests.support.small_models:not_a_module", weights=resnet_weights["pt"]
    )
    assert "returned a str, not a torch.nn.Module" in message


def test_no_weights(tmp_path: Path) -> None:
    assert "needs its weights: --weights FILE" in refused(tmp_path, RESNET, weights=None)


@pytest.mark.parametrize("name", ["weights.bin", "missing.safetensors"])
def test_a_weights_file_that_is_not_there_or_not_a_known_kind(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".bin"):
        path.write_bytes(b"\0" * 16)
    message = refused(tmp_path, RESNET, weights=path, factory_args={"num_classes": 10})
    assert (
        "expected one of .safetensors, .pt, .pth" if name.endswith(".bin") else "does not exist"
    ) in message


def test_a_pickled_module_is_refused_without_running_it(tmp_path: Path) -> None:
    path = tmp_path / "whole-model.pt"
    torch.save(trained_resnet(), path)  # the whole nn.Module, pickled
    message = refused(tmp_path, RESNET, weights=path, factory_args={"num_classes": 10})
    assert "holds pickled Python objects" in message
    assert "tests.support.resnet.ResNet18" in message  # the class the pickle names
    assert "torch.save(model.state_dict(), PATH)" in message


def test_a_training_checkpoint_names_the_state_dict_inside(
    tmp_path: Path, state_dict: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "model_state_dict": state_dict}, path)
    message = refused(tmp_path, RESNET, weights=path, factory_args={"num_classes": 10})
    assert "epoch, model_state_dict hold no tensor" in message
    assert "save checkpoint['model_state_dict'] alone" in message


def test_weights_for_another_class_count_name_the_shapes(
    tmp_path: Path, resnet_weights: dict[str, Path]
) -> None:
    message = refused(
        tmp_path,
        RESNET,
        weights=resnet_weights["safetensors"],
        factory_args={"num_classes": 100},
        image=ImageOptions(size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3),
    )
    assert "wrong shape: fc.weight (10, 512) (the model has (100, 512))" in message
    assert "fc.bias (10,) (the model has (100,))" in message


def test_missing_and_unexpected_keys_are_named(
    tmp_path: Path, state_dict: dict[str, torch.Tensor]
) -> None:
    partial = {k: v for k, v in state_dict.items() if not k.startswith("fc.")}
    partial["head.weight"] = torch.zeros(10, 512)
    path = tmp_path / "partial.safetensors"
    save_file(partial, str(path))
    message = refused(tmp_path, RESNET, weights=path, factory_args={"num_classes": 10})
    assert "missing fc.weight, fc.bias" in message and "unexpected head.weight" in message


def test_weights_saved_from_a_wrapper_say_which_prefix(
    tmp_path: Path, state_dict: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "ddp.pt"
    torch.save({f"module.{k}": v for k, v in state_dict.items()}, path)
    message = refused(tmp_path, RESNET, weights=path, factory_args={"num_classes": 10})
    assert "missing conv1.weight, bn1.weight" in message and "and 117 more" in message
    assert "carry a 'module.' prefix" in message


def test_tied_weights_saved_once_load_into_both_names(tmp_path: Path) -> None:
    model = tied()
    path = tmp_path / "tied.safetensors"
    save_model(model, str(path))  # stores the shared matrix under one of its two names
    from safetensors.torch import load_file

    assert len(load_file(str(path))) < len(model.state_dict())
    folder = import_model(
        "tests.support.small_models:tied",
        name="tied-lm",
        task="tensor",
        out_dir=tmp_path / "out",
        weights=path,
        inputs=[_spec("token-ids", "INT64", [-1, -1])],  # any length; not an identifier
    )
    manifest = verify_artifact(folder)
    assert [(t.name, t.shape) for t in manifest.inputs] == [("token-ids", [-1, -1])]
    assert manifest.imported is not None and manifest.imported.parity["output"] <= 1e-4


def _spec(name: str, datatype: str, shape: list[int]) -> Any:
    from modelfn.artifact import TensorSpec

    return TensorSpec(name=name, datatype=datatype, shape=shape)  # type: ignore[arg-type]
