"""The eager torch model behind the three calls the function makes of an onnxruntime session.

The container function (models.toml `serving.runtime = "torch"`, MODELFN_RUNTIME=torch) serves
the nn.Module rebuilt from the artifact's safetensors weights, for a model whose ops ONNX cannot
express. `TorchSession` answers `run(output_names, feeds)`, `get_inputs()` and `get_outputs()`
as `onnxruntime.InferenceSession` does, with the manifest's tensor names in the manifest's order,
so `LoadedModel`, every task adapter, route and error work unchanged.

torch is imported here only, and this module only when the runtime is torch: the zip function
never imports it (1.9 s of init and 750 MB it does not ship).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from functions.threads import engine_threads
from modelfn.artifact import MANIFEST_FILE, WEIGHTS_FILE, ArtifactError, Manifest, read_checked

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class TensorName:
    """What get_inputs()/get_outputs() return: like onnxruntime's NodeArg, only `.name` is used."""

    name: str


class TorchSession:
    """An eval-mode nn.Module fed and read by tensor name, as an onnxruntime session is."""

    def __init__(self, module: nn.Module, inputs: list[str], outputs: list[str]) -> None:
        self.module = module
        self.inputs = inputs  # forward()'s positional arguments, in order
        self.outputs = outputs  # forward()'s returned tensors, in order

    def get_inputs(self) -> list[TensorName]:
        return [TensorName(name) for name in self.inputs]

    def get_outputs(self) -> list[TensorName]:
        return [TensorName(name) for name in self.outputs]

    def run(
        self, output_names: list[str] | None, feeds: dict[str, NDArray[Any]]
    ) -> list[NDArray[Any]]:
        """The requested outputs (None: all), in the order asked, as onnxruntime returns them."""
        import torch

        missing = [name for name in self.inputs if name not in feeds]
        unknown = sorted(set(output_names or []) - set(self.outputs))
        if missing or unknown:
            raise ValueError(f"inputs missing from feeds: {missing}; unknown outputs: {unknown}")
        # from_numpy shares memory and needs a writable, C-ordered array; binary tensor data
        # arrives read-only (np.frombuffer), so that one is copied.
        args = [
            torch.from_numpy(np.require(feeds[name], requirements=["C", "W"]))
            for name in self.inputs
        ]
        with torch.inference_mode():
            result = self.module(*args)
        returned = (result,) if isinstance(result, torch.Tensor) else tuple(result)
        if len(returned) != len(self.outputs):
            raise ArtifactError(
                f"{type(self.module).__name__} returned {len(returned)} tensors, the manifest "
                f"declares {len(self.outputs)} outputs {self.outputs}; re-export the artifact"
            )
        by_name = {name: t.numpy() for name, t in zip(self.outputs, returned, strict=True)}
        return [by_name[name] for name in (output_names or self.outputs)]


def create_torch_session(folder: Path, manifest: Manifest) -> TorchSession:
    """The eager model of the artifact in `folder`, its weights checked as they are read.

    The weights' bytes are hashed and parsed from the same buffer, so a file changed after the
    fetch's verification is still refused (IntegrityError), as `create_session` refuses a graph.
    """
    import torch

    from architectures import build_torch_model, load_weights

    expected = manifest.files.get(WEIGHTS_FILE)
    if expected is None:
        raise ArtifactError(f"{folder}: the manifest lists no {WEIGHTS_FILE}; nothing to serve")
    path = folder / WEIGHTS_FILE
    weights = read_checked(path, expected)
    _one_request_threads(torch)
    module = build_torch_model(manifest, where=str(folder / MANIFEST_FILE))
    load_weights(module, weights, where=str(path))
    inputs = [spec.name for spec in manifest.inputs]
    arity = len(inspect.signature(module.forward).parameters)
    if arity != len(inputs):
        raise ArtifactError(
            f"{folder / MANIFEST_FILE}: {len(inputs)} inputs {inputs}, but "
            f"{type(module).__name__}.forward takes {arity}; the artifact was built wrong"
        )
    return TorchSession(module, inputs, [spec.name for spec in manifest.outputs])


def _one_request_threads(torch: Any) -> None:
    """Threads as the onnxruntime session sets them: a Lambda sandbox serves one request at a
    time and gets CPU in proportion to memory (1 vCPU at 1,769 MB), so one intra-op thread per
    vCPU the memory buys (functions/threads.py) and no inter-op pool."""
    torch.set_num_threads(engine_threads())
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only settable before the first parallel op of the process
            pass
