"""`modelfn import`: bring an ONNX file, a torch module or a Hugging Face folder in as a
published, registered model."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelfn.artifact import TensorSpec
from modelfn.registry import (
    IMPORTABLE_TASKS,
    ModelEntry,
    ServingEntry,
    load_registry,
    registry_path,
)
from modelfn.store import DEFAULT_LOCAL_STORE, open_store
from tools.cli.arguments import (
    Subparsers,
    add_test_data_arguments,
    check_aliases,
    positive_int,
    test_data_problem,
)
from tools.paths import BUILD_DIR

if TYPE_CHECKING:
    from importing import ImageOptions, TextOptions

IMAGE_FLAGS = (
    "image_size", "resize", "interpolation", "mean", "std", "scale", "channel_order", "layout",
)  # fmt: skip


def register(sub: Subparsers) -> None:
    """Add `import` to the `modelfn` command."""
    cmd = sub.add_parser(
        "import",
        help="import an ONNX file, a torch module or a Hugging Face folder: check it, publish "
        "it, register it",
        description="SOURCE is an .onnx file, package.module:callable (a function or class "
        "returning a torch nn.Module, imported from the current folder or PYTHONPATH), or a "
        "Hugging Face folder as save_pretrained writes it.",
    )
    cmd.add_argument(
        "source", help="model.onnx, package.module:callable, or a save_pretrained folder"
    )
    cmd.add_argument("--name", required=True, help="the model's name (e.g. my-resnet)")
    cmd.add_argument("--task", required=True, choices=IMPORTABLE_TASKS)
    cmd.add_argument("--description", help="for models.toml (default: where it was imported from)")
    labels = cmd.add_mutually_exclusive_group()
    labels.add_argument("--labels", help="class names in logit order, comma-separated")
    labels.add_argument("--labels-file", type=Path, help="class names, one per line")
    cmd.add_argument(
        "--scores",
        choices=["softmax", "sigmoid", "logits"],
        help="a classifier's answered scores: softmax (one label per input), sigmoid (each "
        "label on its own: multi-label) or the logits as they are (default: softmax, or sigmoid "
        "for a Hugging Face folder whose problem_type is multi_label_classification)",
    )

    torch = cmd.add_argument_group("torch modules")
    torch.add_argument("--weights", type=Path, help="state dict: .safetensors, .pt or .pth")
    torch.add_argument("--factory-args", help='keyword arguments as JSON, e.g. {"num_classes": 10}')
    torch.add_argument(
        "--input",
        action="append",
        dest="inputs",
        metavar="NAME:DATATYPE:SHAPE",
        help="a tensor model's input, in forward's order, e.g. x:FP32:-1,16 (-1 = any size; the "
        "first axis is the batch); repeat for several",
    )
    torch.add_argument("--opset", type=positive_int, help="ONNX opset to export with")

    image = cmd.add_argument_group("image-classification: how an image becomes the input")
    image.add_argument("--image-size", help="H or HxW after resize and crop (default: the graph's)")
    image.add_argument("--resize", type=positive_int, help="shorter side before the centre crop")
    image.add_argument("--interpolation", choices=("bilinear", "bicubic", "nearest"))
    image.add_argument("--mean", help="per RGB channel, e.g. 0.485,0.456,0.406")
    image.add_argument("--std", help="per RGB channel, e.g. 0.229,0.224,0.225")
    image.add_argument("--scale", type=float, help="pixel multiplier before mean/std (1/255)")
    image.add_argument("--channel-order", choices=("RGB", "BGR"))
    image.add_argument("--layout", choices=("NCHW", "NHWC"))

    text = cmd.add_argument_group("text models (a Hugging Face folder)")
    text.add_argument(
        "--max-length",
        type=positive_int,
        help="longest text in tokens, special tokens included (default: the model's limit)",
    )
    text.add_argument(
        "--no-truncation",
        action="store_true",
        help="refuse longer texts with a 400 instead of cutting them to --max-length",
    )
    text.add_argument(
        "--pooling",
        choices=("mean", "cls"),
        help="feature-extraction: the tokens' attention-masked mean (default) or the first's",
    )
    text.add_argument(
        "--normalize", action="store_true", help="feature-extraction: L2-normalise each embedding"
    )

    check = cmd.add_argument_group("checks")
    check.add_argument(
        "--examples",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="real inputs: image files, or .npy / .json tensors; shipped in examples.json "
        "(default: the parity gate runs on generated inputs)",
    )
    check.add_argument("--tolerance", type=float, default=1e-4, help="largest difference (1e-4)")
    # A registered entry at serving.precision = "int8": the int8 graph is scored on these.
    add_test_data_arguments(check)
    check.add_argument("--memory-mb", type=positive_int, help="a new entry's serving.memory_mb")
    check.add_argument("--ephemeral-storage-mb", type=positive_int, help="a new entry's /tmp size")

    out = cmd.add_argument_group("output")
    out.add_argument(
        "--publish",
        metavar="STORE_URI",
        help=f"s3://BUCKET[/PREFIX] or a folder (default: {DEFAULT_LOCAL_STORE})",
    )
    out.add_argument(
        "--alias", action="append", default=None, help="alias(es) to point (default: latest)"
    )
    out.add_argument("--out", default=str(BUILD_DIR), help="where the artifact folder is built")
    out.add_argument(
        "--no-registry", action="store_true", help="publish only; leave models.toml as it is"
    )
    cmd.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from importing import ImportRefused, import_model
    from modelfn.store import publish_artifact
    from tools.user_data import UserDataError

    try:
        existing = None if args.no_registry else _existing_entry(args.name, args.task)
        serving = _serving(args, existing)
        int8 = existing is not None and serving.precision == "int8"
        if int8 or args.data or args.text_column or args.label_column:
            _check_int8_data(args, existing if int8 else None)
        store = open_store(args.publish)  # a bad store URI fails before the export, not after
        check_aliases(args.alias)
        # As `python -m` and uvicorn do: the user's package is found from the current folder.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        folder = import_model(
            args.source,
            name=args.name,
            task=args.task,
            out_dir=Path(args.out),
            labels=_labels(args),
            scores=args.scores,
            image=_image_options(args),
            weights=args.weights,
            factory_args=_factory_args(args.factory_args),
            inputs=[_tensor_spec(text) for text in args.inputs] if args.inputs else None,
            examples=args.examples,
            text=_text_options(args),
            tolerance=args.tolerance,
            opset=args.opset,
            serving=serving,
        )
        if int8:
            # Its function serves model.int8.onnx: the graph becomes a file of the version
            # before it is published, or, past the threshold, nothing is (Int8Refused).
            from tools.edge_test_data import user_test_data
            from tools.int8_version import add_int8_graph, describe

            assert existing is not None
            data = user_test_data(
                folder,
                args.data,
                text_column=args.text_column or "text",
                label_column=args.label_column or "label",
            )
            print(describe(add_int8_graph(folder, existing, data)))
    except (ImportRefused, UserDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = publish_artifact(store, folder, aliases=tuple(args.alias))
    print(
        f"published {manifest.name} {manifest.version} to {store.uri} "
        f"(aliases: {', '.join(args.alias)})"
    )
    if existing is None and not args.no_registry:
        from tools.models_toml import add_imported_entry

        description = args.description or f"Imported with modelfn import from {args.source}"
        add_imported_entry(registry_path(), args.name, args.task, description, serving)
        print(f"added [models.{args.name}] to {registry_path()}")
    return 0


def _check_int8_data(args: argparse.Namespace, entry: ModelEntry | None) -> None:
    """ImportRefused unless --data is asked for by an int8 entry and fits it, before any export."""
    from importing import ImportRefused

    if entry is None:
        raise ImportRefused(
            "--data, --text-column and --label-column score the int8 graph of a model registered "
            f'at serving.precision = "int8"; {args.name} is not: drop them (export-edge and '
            "modelfn quantize take them too)"
        )
    args.model = args.name
    problem = test_data_problem(entry, args)
    if problem:
        raise ImportRefused(
            f"{problem} ({args.name} serves int8: serving.precision in models.toml)"
        )


def _existing_entry(name: str, task: str) -> ModelEntry | None:
    """The registry's entry for `name` if it is an imported one of this task; None if absent."""
    from importing import ImportRefused

    registry = load_registry()
    entry = registry.models.get(name)
    if entry is None:
        return None
    if not entry.imported:
        raise ImportRefused(
            f"{registry_path()} has {name}, a model trained here (no imported = true); import "
            "under another --name, or --no-registry to publish without registering"
        )
    if entry.task != task:
        raise ImportRefused(
            f"{name} is registered as an imported {entry.task} model; import it with --task "
            f"{entry.task}, or under another --name"
        )
    return entry


def _serving(args: argparse.Namespace, existing: ModelEntry | None) -> ServingEntry:
    """The settings the budget is checked against: the entry's, or a new entry's from the flags."""
    from importing import ImportRefused

    sizes = {
        k: v
        for k, v in (
            ("memory_mb", args.memory_mb),
            ("ephemeral_storage_mb", args.ephemeral_storage_mb),
        )
        if v is not None
    }
    if existing is not None:
        if sizes:
            raise ImportRefused(
                f"{args.name} is registered: change {', '.join(f'serving.{k}' for k in sizes)} "
                f"in {registry_path()} instead of passing them here"
            )
        return existing.serving
    alias = "latest" if "latest" in args.alias else args.alias[0]
    try:
        return ServingEntry(alias=alias, **sizes)
    except ValueError as exc:
        raise ImportRefused(f"serving settings: {exc}") from exc


def _labels(args: argparse.Namespace) -> list[str]:
    from importing import ImportRefused

    if args.labels_file is not None:
        try:
            lines = args.labels_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ImportRefused(f"--labels-file: {exc}") from exc
        return [line.strip() for line in lines if line.strip()]
    if args.labels:
        return [label.strip() for label in args.labels.split(",")]
    return []


def _image_options(args: argparse.Namespace) -> ImageOptions | None:
    from importing import ImageOptions, ImportRefused

    given = {k: getattr(args, k) for k in IMAGE_FLAGS if getattr(args, k) is not None}
    if not given:
        return None
    if "mean" not in given or "std" not in given:
        raise ImportRefused(
            "the image scheme needs --mean and --std (the normalisation the model was trained "
            "with, per RGB channel, e.g. ImageNet's 0.485,0.456,0.406 and 0.229,0.224,0.225)"
        )
    options: dict[str, Any] = {
        k: v for k, v in given.items() if k not in ("image_size", "mean", "std")
    }
    if "image_size" in given:
        options["size"] = _size(given["image_size"])
    return ImageOptions(
        mean=_triple(given["mean"], "--mean"), std=_triple(given["std"], "--std"), **options
    )


def _text_options(args: argparse.Namespace) -> TextOptions | None:
    """The text flags as TextOptions; None when none was given (the folder's defaults)."""
    from importing import TextOptions

    given = (args.max_length, args.no_truncation or None, args.pooling, args.normalize or None)
    if all(flag is None for flag in given):
        return None
    return TextOptions(
        max_length=args.max_length,
        truncation=not args.no_truncation,
        pooling=args.pooling or "mean",
        normalize=args.normalize,
    )


def _size(text: str) -> tuple[int, int]:
    from importing import ImportRefused

    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes, default=0) < 1:
        raise ImportRefused(f"--image-size {text!r}: give H or HxW in pixels, e.g. 224 or 224x224")
    return (sizes[0], sizes[-1])


def _triple(text: str, flag: str) -> tuple[float, float, float]:
    from importing import ImportRefused

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ImportRefused(f"{flag} {text!r}: give three numbers, R,G,B, e.g. 0.485,0.456,0.406")
    return (values[0], values[1], values[2])


def _factory_args(text: str | None) -> dict[str, Any] | None:
    from importing import ImportRefused

    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ImportRefused(f"--factory-args is not JSON ({exc}): e.g. '{{\"num_classes\": 10}}'")
    if not isinstance(value, dict):
        raise ImportRefused("--factory-args must be a JSON object of keyword arguments")
    return value


def _tensor_spec(text: str) -> TensorSpec:
    from importing import ImportRefused

    name, _, rest = text.partition(":")
    datatype, _, dims = rest.partition(":")
    try:
        shape = [int(d) for d in dims.split(",")]
        return TensorSpec(name=name, datatype=datatype.upper(), shape=shape)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ImportRefused(
            f"--input {text!r}: give NAME:DATATYPE:SHAPE, e.g. x:FP32:-1,16 (datatype FP32, "
            "FP16, INT64, INT32, UINT8 or BOOL; -1 = any size)"
        ) from exc
