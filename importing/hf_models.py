"""The torch model a Hugging Face folder describes, built by transformers' own classes, and the
small wrappers that give the exported graph plain tensors in and out.

- text-classification: AutoModelForSequenceClassification; the graph returns its `logits`.
- feature-extraction: AutoModel; the graph pools `last_hidden_state` into one vector per text,
  the attention-masked mean of the tokens (`mean`, what sentence-transformers models mostly use)
  or the first token's (`cls`), optionally L2-normalised. The pooling is part of the graph, so
  the function serves the embedding as the graph returns it and the parity gate compares the
  whole computation against torch.
- image-classification: AutoModelForImageClassification; `pixel_values` in, `logits` out.

Weights are read by transformers (`from_pretrained` with `weights_only=True`, so a pickled
`pytorch_model.bin` is refused, never run), and must fit the class exactly: a missing weight would
be randomly initialised, so it is refused by name (a classifier head that was never trained is the
usual one). Only the feature extractor may leave out the pooler, which its pooling never reads.
"""

from __future__ import annotations

import pickle
from typing import Any

import torch
from torch import nn

from importing.errors import ImportRefused
from importing.hf_folder import HfFolder
from importing.text_options import Pooling
from importing.torch_module import pickled_objects

# The transformers class each task builds from config.json.
TASK_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "feature-extraction": "AutoModel",
    "image-classification": "AutoModelForImageClassification",
}
SHOWN = 5  # weight names a message lists; the rest are counted


def load_model(folder: HfFolder, task: str) -> nn.Module:
    """The folder's model as `task`'s transformers class, every weight loaded, in eval mode."""
    import transformers

    logs: Any = transformers.utils.logging  # untyped
    logs.set_verbosity_error()  # its warnings about the weights become refusals below
    logs.disable_progress_bar()
    auto = getattr(transformers, TASK_CLASSES[task])
    where = (
        f"{folder.path.name}: config.json's {folder.architecture} ({folder.config['model_type']})"
    )
    try:
        model, info = auto.from_pretrained(
            str(folder.path),
            local_files_only=True,
            trust_remote_code=False,
            weights_only=True,
            output_loading_info=True,
            # Loaded anyway, so that the wrong shapes are named below (transformers' own error
            # points at a report its logging prints).
            ignore_mismatched_sizes=True,
        )
    except pickle.UnpicklingError as exc:
        raise pickled_objects(folder.weights[0], exc) from exc
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc) or "Unrecognized model" in str(exc):
            raise ImportRefused(
                f"{where} has no {task} class in transformers {transformers.__version__} "
                f"({auto.__name__} does not take it); import it with the task its architecture "
                "has, or export it to ONNX yourself"
            ) from exc
        raise ImportRefused(f"{where}: transformers cannot build it: {_first(exc)}") from exc
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise ImportRefused(
            f"{where}: transformers cannot load it: {_first(exc)}; check that the weights were "
            "saved from this config (model.save_pretrained(FOLDER) writes both)"
        ) from exc
    missing = sorted(info.get("missing_keys", ()))
    if task == "feature-extraction":  # the pooling below reads the hidden states, not the pooler
        missing = [key for key in missing if not key.startswith("pooler.")]
    mismatched = [_mismatch(entry) for entry in sorted(info.get("mismatched_keys", ()), key=str)]
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f"missing {_few(missing)}")
        if mismatched:
            problems.append(f"wrong shape {_few(mismatched)}")
        raise ImportRefused(
            f"the weights in {folder.path.name} do not fit {type(model).__name__}: "
            f"{'; '.join(problems)}. A missing weight would be random: import a checkpoint "
            "trained for this task (a classifier needs its fine-tuned head), or check that "
            "config.json and the weights were saved together"
        )
    built: nn.Module = model.eval()
    return built


class TextLogits(nn.Module):
    """Token tensors -> the classifier's logits [batch, labels]. The graph's inputs are these
    parameters, in this order (token_type_ids only where the tokenizer gives it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        named = _tokens(input_ids, attention_mask, token_type_ids)
        logits: torch.Tensor = self.model(**named).logits
        return logits


class TextEmbeddings(nn.Module):
    """Token tensors -> one pooled (and optionally L2-normalised) vector per text [batch, hidden]."""

    def __init__(self, model: nn.Module, pooling: Pooling, normalize: bool) -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.normalize = normalize

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        named = _tokens(input_ids, attention_mask, token_type_ids)
        hidden: torch.Tensor = self.model(**named).last_hidden_state  # [batch, tokens, hidden]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # the mean over the text's own tokens: padding has mask 0 and does not count
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            # clamp: a row of padding only (never sent) would divide by zero
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        if self.normalize:
            pooled = nn.functional.normalize(pooled, p=2.0, dim=1)
        return pooled


def _tokens(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    named = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        named["token_type_ids"] = token_type_ids
    return named


class PixelLogits(nn.Module):
    """pixel_values [batch, 3, H, W] -> logits [batch, labels]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.model(pixel_values=pixel_values).logits
        return logits


def forward_parameters(model: nn.Module) -> set[str]:
    """The names `model.forward` takes: which of the tokenizer's tensors the graph can use."""
    import inspect

    return set(inspect.signature(model.forward).parameters)


def _mismatch(entry: Any) -> str:
    """transformers' (name, shape in the file, shape the config builds) as a message reads it."""
    if isinstance(entry, tuple) and len(entry) == 3:
        name, found, built = entry
        return f"{name} {tuple(found)} (the config builds {tuple(built)})"
    return str(entry)


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown if len(names) <= SHOWN else f"{shown} and {len(names) - SHOWN} more"


def describe(model: nn.Module) -> dict[str, Any]:
    """What the import record keeps of the built model: its class and its size."""
    return {
        "class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
