"""A torch module given as `package.module:callable` plus a weights file.

The user's factory is imported and called here, on the user's machine, at import time; the
artifact keeps none of its code. The weights are read without running code: safetensors, or
`torch.load(weights_only=True)`, which refuses anything but tensors and plain containers, so a
pickled nn.Module (whose unpickling runs code named in the file) is refused with what to save
instead.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from importing.errors import ImportRefused
from importing.source import REFERENCE

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
SHOWN = 5  # keys named in a message; the rest are counted


def load_factory(reference: str) -> Callable[..., Any]:
    """The callable `package.module:callable` names (an attribute path after the colon)."""
    found = REFERENCE.fullmatch(reference)
    if found is None:
        raise ImportRefused(
            f"{reference!r} is not package.module:callable (e.g. mypackage.models:resnet18)"
        )
    module_name, attribute = found.groups()
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ImportRefused(
            f"cannot import {module_name} ({type(exc).__name__}: {exc}); run modelfn import from "
            "the folder that holds the package, or add that folder to PYTHONPATH"
        ) from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ImportRefused(
                f"{module_name} has no {attribute}; name a function or class that returns the "
                "nn.Module, as package.module:callable"
            )
        target = getattr(target, part)
    if not callable(target):
        raise ImportRefused(f"{reference} is a {type(target).__name__}, not a callable")
    return target  # type: ignore[no-any-return]


def build_module(reference: str, factory_args: Mapping[str, Any]) -> nn.Module:
    """Call the factory with `factory_args` as keyword arguments; the module, in eval mode."""
    factory = load_factory(reference)
    try:
        module = factory(**factory_args)
    except Exception as exc:
        raise ImportRefused(
            f"{reference}(**{dict(factory_args)!r}) raised {type(exc).__name__}: {exc}; check "
            "--factory-args against the factory's parameters"
        ) from exc
    if not isinstance(module, nn.Module):
        raise ImportRefused(
            f"{reference}(...) returned a {type(module).__name__}, not a torch.nn.Module; name "
            "the function or class that builds the model"
        )
    return module.eval()


def source_file(reference: str) -> Path | None:
    """The .py file the factory lives in, for the import record (None for built-in modules)."""
    module = importlib.import_module(reference.split(":")[0])
    try:
        path = inspect.getsourcefile(module)
    except TypeError:
        return None
    return Path(path) if path else None


# --- weights ------------------------------------------------------------------------------------


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a safetensors file or a `.pt`/`.pth` state dict, read without pickle code."""
    if not path.is_file():
        raise ImportRefused(f"weights file {path} does not exist")
    if path.suffix not in WEIGHT_SUFFIXES:
        raise ImportRefused(
            f"weights file {path}: expected one of {', '.join(WEIGHT_SUFFIXES)} (a safetensors "
            "file, or a state dict saved with torch.save(model.state_dict(), PATH))"
        )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise ImportRefused(f"{path} is not a readable safetensors file: {exc}") from exc
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise pickled_objects(path, exc) from exc
    except (RuntimeError, OSError, EOFError) as exc:
        raise ImportRefused(f"{path} is not a torch state dict file: {exc}") from exc
    return _state_dict(loaded, path)


def pickled_objects(path: Path, exc: pickle.UnpicklingError) -> ImportRefused:
    """The refusal of a file torch.load(weights_only=True) will not read: it pickles objects."""
    named = re.search(r"GLOBAL ([\w.]+)", str(exc))
    what = f" (it names {named.group(1)})" if named else ""
    return ImportRefused(
        f"{path} holds pickled Python objects, not just tensors{what}: a whole pickled "
        "nn.Module or a checkpoint with custom classes, which torch.load(weights_only=True) "
        "refuses because unpickling runs code. Save the weights alone: "
        "torch.save(model.state_dict(), PATH) or safetensors.torch.save_model(model, PATH)"
    )


def _state_dict(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, nn.Module):  # only if the caller allowed its class as a safe global
        raise ImportRefused(f"{path} holds a whole nn.Module; save model.state_dict() instead")
    if not isinstance(loaded, Mapping):
        raise ImportRefused(
            f"{path} holds a {type(loaded).__name__}, not a state dict; save "
            "torch.save(model.state_dict(), PATH)"
        )
    others = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor)]
    if others:
        nested = [k for k in others if isinstance(loaded[k], Mapping)]
        hint = (
            f"; it looks like a training checkpoint: save checkpoint[{nested[0]!r}] alone"
            if nested
            else ""
        )
        raise ImportRefused(
            f"{path} is not a plain state dict: {_few(others)} hold no tensor{hint} (save "
            "torch.save(model.state_dict(), PATH))"
        )
    return {str(k): v for k, v in loaded.items()}


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load `state` into `module` strictly: every key, no extra one, every shape as built.

    Tied parameters (one tensor under two names, e.g. an embedding and its decoder) count as
    present when either name is: safetensors' save_model stores such a tensor once.
    """
    expected = module.state_dict()
    aliases = _tied_names(expected)
    absent = [k for k in expected if k not in state]
    missing = [k for k in absent if not aliases[k] & state.keys()]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (the model has {tuple(expected[k].shape)})"
        for k in expected  # the module's order: a message reads top to bottom through the model
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected {_few(unexpected)}")
    if wrong:
        problems.append(f"wrong shape: {_few(wrong)}")
    if problems:
        raise ImportRefused(
            f"the weights in {where} do not fit the module: {'; '.join(problems)}. "
            f"{_prefix_hint(missing, unexpected)}Check --factory-args (sizes such as "
            "num_classes) and that the weights were saved from this model"
        )
    for key in absent:  # all tied to a present name: fill them from it
        state[key] = state[min(aliases[key] & state.keys())]
    module.load_state_dict(state, strict=True)


def _tied_names(state: Mapping[str, torch.Tensor]) -> dict[str, set[str]]:
    # Empty tensors all sit at address 0: each is its own, never tied to another.
    def storage(name: str, tensor: torch.Tensor) -> tuple[object, ...]:
        return (tensor.data_ptr(), tuple(tensor.shape)) if tensor.numel() else (name,)

    by_storage: dict[tuple[object, ...], set[str]] = {}
    for name, tensor in state.items():
        by_storage.setdefault(storage(name, tensor), set()).add(name)
    return {name: by_storage[storage(name, t)] - {name} for name, t in state.items()}


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    """Weights saved from a wrapper (DataParallel's `module.`) differ from the model's by a prefix."""
    if not (missing and unexpected):
        return ""
    prefix = unexpected[0].split(".")[0] + "."
    if all(k.startswith(prefix) for k in unexpected) and {
        k.removeprefix(prefix) for k in unexpected
    } & set(missing):
        return (
            f"The file's keys carry a {prefix!r} prefix the model's do not (saved from a "
            f"wrapper such as DataParallel): save the inner model's state_dict(). "
        )
    return ""


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown if len(names) <= SHOWN else f"{shown} and {len(names) - SHOWN} more"
