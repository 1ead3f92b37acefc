"""`train_model`: registry entry -> trained, evaluated, exported, verified artifact folder.

What varies per model (task, architecture, data set) is the entry's recipe (training/recipe.py).
The task's trainer builds the model (`Recipe.builder`) once the data has fixed its sizes
(classes, vocabulary).

The folder written is `<out_dir>/<name>/<version>/` with model.safetensors, model.onnx and
manifest.json, in the format of modelfn.artifact; `modelfn.store.publish_artifact` uploads it.
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from modelfn.artifact import (
    EXAMPLES_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    Architecture,
    DataFingerprint,
    Examples,
    Manifest,
    TrainingRecord,
    commit_version,
    describe_files,
    framework_versions,
    new_version,
    sha256_file,
)
from training.checkpoint import Checkpointer
from training.config import OptimisationConfig, load_preset
from training.distributed import from_env
from training.errors import TrainingError
from training.export_onnx import check_parity, export_onnx
from training.loop import precision_in_use, seed_everything, set_threads
from training.recipe import Log, quiet_log, recipe_for
from training.report import report_files
from training.run import Run
from training.trained_model import TrainedModel

# --- training ---------------------------------------------------------------------------------


# The packages whose versions a trained manifest records (Manifest.frameworks).
FRAMEWORKS = ("torch", "onnx", "onnxscript", "onnxruntime", "safetensors", "numpy")


def train_model(
    name: str,
    *,
    data_dir: str | Path | None = None,
    preset: str | None = None,
    epochs: int | None = None,
    out_dir: Path,
    seed: int = 0,
    log: Log = print,
    progress: bool = False,
    run_dir: Path | None = None,
    resume: bool = False,
) -> Path | None:
    """Train model `name` from models.toml and write its artifact folder; return that folder.

    Parameters:
        data_dir: folder holding the data sets, or the model's data set folder itself
            (default: $MODELFN_DATA_DIR, then ../shared/data; see `data_root_for`); the model's
            data is read from `<data root>/<entry.data_subdir>`.
        preset: table of the model's training config (default: the entry's training.preset).
        epochs: overrides the preset's epoch count (e.g. 1 for a quick check).
        out_dir: the folder is written at `<out_dir>/<name>/<version>/`.
        seed: seeds weight init, dropout, data order and augmentation.
        log: receives one line per epoch and the final test metrics.
        progress: draw a live progress bar on stderr (then `log` should be `tqdm.write`).
        run_dir: where the run checkpoints after every epoch (training/checkpoint.py); None:
            no checkpoints.
        resume: continue the run checkpointed in `run_dir` (same model, preset, seed, config).

    Under torchrun (training/distributed.py) every rank trains its share; rank 0 returns the
    artifact folder and the other ranks None.

    Raises:
        TrainingError: anything the user can fix in models.toml, the training config or the data
            (`ConfigError`, `DataFormatError` and `ParityError` are TrainingErrors).
        FileNotFoundError: the data folder or a data file is missing.

    Example:
        >>> train_model("cifar10-cnn", preset="smoke", out_dir=Path("build/artifacts"))  # doctest: +SKIP
        PosixPath('build/artifacts/cifar10-cnn/20260101T120000Z-1a2b3c4d')
    """
    recipe = recipe_for(name)
    entry = recipe.entry
    preset = preset or entry.trained().training.preset
    config_path = entry.training_config_path()
    cfg = load_preset(config_path, preset, recipe.task.config_schema)
    if epochs is not None:
        if epochs < 1:
            raise TrainingError(f"epochs must be >= 1, got {epochs}")
        cfg = cfg.model_copy(update={"epochs": epochs})
    where = f"{config_path} [{preset}.model]"
    ranks = from_env()  # torchrun's ranks, or one process
    if not ranks.main:  # every rank computes the same figures; rank 0 says them
        log, progress = quiet_log, False
    # Before the data is read, so a bad [model] key fails in a second, not a minute.
    build = recipe.builder(cfg, where=where, log=log)
    data = recipe.load_data(data_dir)
    threads = set_threads()
    generator = seed_everything(seed)
    device = recipe.device()
    log(
        f"{name}: preset {preset}, seed {seed}, {threads} CPU threads, {ranks.world} process(es), "
        f"on {device}"
    )
    checkpointer = None
    if run_dir is not None:
        identity = {
            "model": name,
            "preset": preset,
            "seed": seed,
            "config": cfg.model_dump(mode="json"),
        }
        checkpointer = Checkpointer(Path(run_dir), identity, resume=resume)
        log(f"checkpoints after every epoch in {run_dir}")
    elif resume:
        raise TrainingError("resume needs the run's folder (modelfn train MODEL --resume RUN_DIR)")
    pre = recipe.dataset.preprocessing(data)
    run = Run(log=log, progress=progress, checkpointer=checkpointer, ranks=ranks, device=device)
    trained = recipe.task.train(build, data, pre, cfg, generator, run)
    if not ranks.main:
        return None  # rank 0 exports, verifies and writes the one artifact

    return write_artifact(
        out_dir=Path(out_dir),
        name=name,
        task=entry.task,
        architecture=Architecture(
            module=entry.trained().architecture, config=trained.architecture_config()
        ),
        trained=trained,
        record=TrainingRecord(
            preset=preset,
            epochs=cfg.epochs,
            hyperparameters={
                **cfg.model_dump(exclude={"model"}),
                "threads": threads,
                # What the run computed in: a bf16 preset on a CPU without bf16 trains in fp32.
                **(
                    {"precision": precision_in_use(cfg, device.type)}
                    if isinstance(cfg, OptimisationConfig)
                    else {}
                ),
            },
            seed=seed,
            seconds=round(trained.seconds, 3),
        ),
        fingerprint=recipe.dataset.fingerprint(data),
        parity_tolerance=cfg.parity_tolerance,
        log=log,
    )


def write_artifact(
    *,
    out_dir: Path,
    name: str,
    task: str,
    architecture: Architecture,
    trained: TrainedModel,
    record: TrainingRecord,
    fingerprint: DataFingerprint,
    parity_tolerance: float,
    log: Log = print,
) -> Path:
    """Weights, the task's files (a vocabulary), real examples, ONNX graph (parity-checked), the
    evaluation report (training/report.py), manifest; staged, then renamed to `<name>/<version>/`."""
    from safetensors.torch import save_model

    model_root = out_dir / name
    model_root.mkdir(parents=True, exist_ok=True)
    # A hidden sibling of the final folder, so the rename is atomic and readers never see half a version.
    staging = model_root / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        # save_model stores a tied matrix once (the LSTM's embedding and decoder share one) and
        # keeps buffers (BatchNorm statistics) with the weights.
        save_model(trained.model, str(staging / WEIGHTS_FILE))
        # safetensors creates the file owner-only; artifacts are read by other users and tools.
        (staging / WEIGHTS_FILE).chmod(0o644)
        files = dict(trained.files)
        if trained.examples:  # real held-out inputs, for the API docs (training/examples.py)
            examples = Examples(dataset=fingerprint.dataset, examples=trained.examples)
            files[EXAMPLES_FILE] = examples.to_json()
        for filename, data in files.items():
            (staging / filename).write_bytes(data)
        graph_files = export_onnx(
            trained.model,
            trained.export_example,
            staging / ONNX_FILE,
            inputs=trained.inputs,
            outputs=trained.outputs,
        )
        diff = check_parity(
            staging / ONNX_FILE, trained.model, trained.parity_feeds, parity_tolerance
        )
        rows = len(next(iter(trained.parity_feeds.values())))
        log(f"ONNX parity: max |torch - onnxruntime| = {diff:.2e} on {rows} real test inputs")
        metrics = {**trained.metrics, "onnx_max_abs_diff": diff}
        report = report_files(name, trained.labels, metrics, trained.evaluation)
        for filename, data in report.items():
            (staging / filename).write_bytes(data)

        manifest = Manifest(
            name=name,
            version=new_version(sha256_file(staging / WEIGHTS_FILE)),
            task=task,
            created_at=datetime.now(UTC),
            frameworks=framework_versions(FRAMEWORKS),
            architecture=architecture,
            inputs=[t.spec() for t in trained.inputs],
            outputs=[t.spec() for t in trained.outputs],
            labels=trained.labels,
            preprocessing=trained.preprocessing,
            metrics=metrics,
            reference=trained.reference,
            training=record,
            data=fingerprint,
            files=describe_files(staging, [WEIGHTS_FILE, *graph_files, *files, *report]),
        )
        folder = commit_version(staging, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"wrote {folder}")
    return folder
