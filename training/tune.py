"""`modelfn tune MODEL`: hyper-parameter search with Optuna, on held-out training data only.

The search space lives in the model's training config, in the reserved `[search]` table:

    [search]
    base = "full"                       # the preset every trial starts from
    [search.parameters]                 # preset keys, or "model.<argument>"
    lr = { low = 1e-3, high = 5e-2, log = true }
    batch_size = { choices = [16, 32, 64] }

Trials are sampled by TPE and pruned by the median rule on their intermediate values; the study
lives in a SQLite file (default build/tune/<model>.db), so a search can be stopped, resumed and
watched from another process. The first trial is the base preset itself, so the best trial is
never worse than it and the printout says by how much it is better. Figures (optimisation
history, parameter importances) are written as PNGs beside the study, and `write_preset` adds
the best trial to the config file as a new preset.

Objective, per task, never reading the test split:
- image classification: train on the training images less every `VALIDATION_EVERY`th, which
  are held out as a validation split (`cifar10.carve_validation`), and maximise the accuracy
  there after the last epoch (what the preset ships); each epoch's figure goes to the pruner.
- language modelling: the data set's own validation text; minimise its perplexity after the
  last epoch (the best one with early stopping), each epoch's figure to the pruner.
- text classification: the cross-validated held-out accuracy over the training data
  (`held_out_splits`), reported fold by fold for pruning.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from architectures import ARCHITECTURES
from modelfn.registry import REPO_ROOT, load_registry
from training.config import (
    MODEL_PREFIX,
    SEARCH_TABLE,
    ConfigError,
    PresetConfig,
    TextClassifierConfig,
    load_preset,
    with_overrides,
)
from training.cross_validate import held_out_scorer
from training.data import cifar10
from training.errors import TrainingError
from training.loop import seed_everything, set_threads
from training.recipe import TASKS, quiet_log, recipe_for
from training.run import Run

TUNE_DIR = REPO_ROOT / "build" / "tune"


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float
    log: bool = False
    integer: bool = False  # whole numbers only (e.g. a width)


class Choices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    choices: list[int | float | str | bool]


class SearchSpace(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = "full"
    parameters: dict[str, Range | Choices]


def load_search(path: Path) -> SearchSpace:
    """The `[search]` table of a training config; ConfigError naming the bad key."""
    raw = tomllib.loads(path.read_text(encoding="utf-8")).get(SEARCH_TABLE)
    if raw is None:
        raise ConfigError(f"{path}: no [{SEARCH_TABLE}] table; add one to search this model")
    try:
        space = SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            f"{path}: [{SEARCH_TABLE}] {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
        ) from None
    for key, bound in space.parameters.items():
        if isinstance(bound, Range) and not bound.low < bound.high:
            raise ConfigError(f"{path}: [{SEARCH_TABLE}.parameters] {key}: low must be below high")
    return space


def sample(trial: Any, space: SearchSpace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, bound in space.parameters.items():
        if isinstance(bound, Choices):
            values[key] = trial.suggest_categorical(key, bound.choices)
        elif bound.integer:
            values[key] = trial.suggest_int(key, int(bound.low), int(bound.high), log=bound.log)
        else:
            values[key] = trial.suggest_float(key, bound.low, bound.high, log=bound.log)
    return values


def text_classification_objective(
    name: str, data_dir: str | None, seed: int
) -> Callable[[Any, TextClassifierConfig], float]:
    """trial, config -> mean held-out accuracy at the best epoch, over the config's folds."""
    import optuna

    score = held_out_scorer(name, data_dir=data_dir, seed=seed)

    def objective(trial: Any, cfg: TextClassifierConfig) -> float:
        def after_fold(k: int, mean: np.ndarray) -> None:
            trial.report(float(mean.max()), step=k)
            if trial.should_prune():
                raise optuna.TrialPruned()

        mean = score(cfg, after_fold=after_fold)
        trial.set_user_attr("epochs", int(np.argmax(mean)) + 1)
        return float(mean.max())

    return objective


# 1 in 5 of CIFAR-10's training images: 160 of the 800-image sample (one image is 0.6 points).
VALIDATION_EVERY = 5


def trainer_objective(
    *, held_out: Callable[[Any], Any], per_epoch: str, final: str
) -> Callable[[str, str | None, int], Callable[[Any, Any], float]]:
    """An objective that runs the task's own trainer on `held_out(data)`, a view of the data
    whose test split is validation data; `per_epoch` (a history key) goes to the pruner after
    each epoch, `final` (a metric) is the trial's value."""

    def make(name: str, data_dir: str | None, seed: int) -> Callable[[Any, Any], float]:
        import optuna

        recipe = recipe_for(name)
        data = held_out(recipe.load_data(data_dir))
        pre = recipe.dataset.preprocessing(data)
        device = recipe.device()

        def objective(trial: Any, cfg: Any) -> float:
            def on_epoch(record: dict[str, float]) -> None:
                trial.report(record[per_epoch], step=int(record["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned()

            where = f"{name} trial {trial.number} [model]"
            build = recipe.builder(cfg, where=where, log=quiet_log)
            run = Run(log=quiet_log, on_epoch=on_epoch, device=device)
            trained = recipe.task.train(build, data, pre, cfg, seed_everything(seed), run)
            return float(trained.metrics[final])

        return objective

    return make


class Objective(NamedTuple):
    make: Callable[[str, str | None, int], Callable[[Any, Any], float]]  # (model, data, seed)
    direction: Literal["maximize", "minimize"]
    what: str  # the trial's value, in words
    # Reported steps a trial runs before the pruner may stop it: the early epochs of a cosine
    # schedule are far from its last, so the epoch-reporting trainers wait for half of them.
    prune_after: Callable[[Any], int]


OBJECTIVES: dict[str, Objective] = {
    "image-classification": Objective(
        trainer_objective(
            held_out=lambda data: cifar10.carve_validation(data, VALIDATION_EVERY),
            per_epoch="validation_accuracy",
            final="accuracy",
        ),
        "maximize",
        "validation accuracy",
        prune_after=lambda cfg: cfg.epochs // 2,
    ),
    "language-modeling": Objective(
        # The trainer's final figures are computed on its test split: hand it the validation
        # text there, so the test text is never scored during a search.
        trainer_objective(
            held_out=lambda data: dataclasses.replace(data, test=data.valid),
            per_epoch="valid_perplexity",
            final="valid_perplexity",
        ),
        "minimize",
        "validation perplexity",
        prune_after=lambda cfg: cfg.epochs // 2,
    ),
    "text-classification": Objective(
        text_classification_objective, "maximize", "held-out accuracy", prune_after=lambda cfg: 1
    ),
}


def tune(
    name: str,
    *,
    trials: int,
    timeout_min: float | None = None,
    storage: Path | None = None,
    data_dir: str | None = None,
    base: str | None = None,
    seed: int = 0,
    write_preset: str | None = None,
    log: Callable[[str], None] = print,
) -> Any:
    """Run (or resume) the study of `name`; returns it. See the module docstring."""
    import optuna

    entry = load_registry().get(name)
    if entry.task not in OBJECTIVES:
        raise TrainingError(
            f"modelfn tune searches {', '.join(OBJECTIVES)} models so far; {name} is "
            f"{entry.task} (its presets are set by hand, see docs/training.md)"
        )
    make_objective, direction, what, prune_after = OBJECTIVES[entry.task]
    path = entry.training_config_path()
    space = load_search(path)
    schema = TASKS[entry.task].config_schema
    base_name = base or space.base
    base_cfg = load_preset(path, base_name, schema)
    # A model argument the preset leaves out has the architecture's default.
    defaults = {
        f.name: f.default
        for f in dataclasses.fields(ARCHITECTURES[entry.trained().architecture].config)
    }
    base_values = {
        key: (
            base_cfg.model.get(
                key.removeprefix(MODEL_PREFIX), defaults.get(key.removeprefix(MODEL_PREFIX))
            )
            if key.startswith(MODEL_PREFIX)
            else getattr(base_cfg, key)
        )
        for key in space.parameters
    }
    for key, value in base_values.items():
        bound = space.parameters[key]
        inside = (
            value in bound.choices
            if isinstance(bound, Choices)
            else value is not None and bound.low <= value <= bound.high
        )
        if not inside:
            raise ConfigError(
                f"{path}: [{SEARCH_TABLE}.parameters] {key} does not hold the [{base_name}] "
                f"preset's value {value!r}; widen it, so the first trial can be the preset itself"
            )
    storage = storage or TUNE_DIR / f"{name}.db"
    storage.parent.mkdir(parents=True, exist_ok=True)
    threads = set_threads()
    objective = make_objective(name, data_dir, seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial instead
    study = optuna.create_study(
        study_name=f"{name}-{base_name}",
        storage=f"sqlite:///{storage}",
        load_if_exists=True,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=prune_after(base_cfg)
        ),
    )
    if not study.trials:
        study.enqueue_trial(base_values, user_attrs={"preset": base_name})
    log(
        f"{name}: searching {', '.join(space.parameters)} from preset [{base_name}], {trials} trials"
        f"{f' or {timeout_min:g} min' if timeout_min else ''}, {threads} threads; study in {storage}"
    )

    def run(trial: Any) -> float:
        cfg = with_overrides(base_cfg, sample(trial, space), where=f"{path} trial {trial.number}")
        try:
            value = objective(trial, cfg)
        except optuna.TrialPruned:
            log(
                f"trial {trial.number}: pruned (below the median of earlier trials) with {trial.params}"
            )
            raise
        log(f"trial {trial.number}: {what} {value:.4f} with {trial.params}")
        return value

    study.optimize(run, n_trials=trials, timeout=timeout_min * 60 if timeout_min else None)
    best = study.best_trial
    first = study.trials[0]
    log(
        f"best: trial {best.number}, {what} {best.value:.4f} ({best.params}); the [{base_name}] "
        f"preset (trial 0): {first.value if first.value is not None else float('nan'):.4f}"
    )
    for figure in write_figures(study, storage.with_suffix("")):
        log(f"wrote {figure}")
    if write_preset:
        append_preset(
            path, write_preset, with_overrides(base_cfg, best.params, str(path)), best, what
        )
        log(f"wrote preset [{write_preset}] to {path}")
    return study


def write_figures(study: Any, folder: Path) -> list[Path]:
    """Optimisation history and parameter importances as PNGs (importances need 2+ trials)."""
    import matplotlib
    import optuna

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    complete = [t for t in study.trials if t.value is not None]
    for filename, draw, needed in (
        ("optimization_history.png", plots.plot_optimization_history, 1),
        ("param_importances.png", plots.plot_param_importances, 2),
    ):
        if len(complete) < needed or (needed == 2 and len({str(t.params) for t in complete}) < 2):
            continue
        with warnings.catch_warnings():  # optuna marks its matplotlib plots experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            axes = draw(study)
        figure = axes.get_figure(root=True)  # the whole figure the axes are drawn on
        assert figure is not None
        figure.savefig(folder / filename, dpi=100, bbox_inches="tight")
        plt.close(figure)
        written.append(folder / filename)
    return written


def append_preset(path: Path, preset: str, cfg: PresetConfig, trial: Any, what: str) -> None:
    """Add `[preset]` (and its model table) to the config file, refusing to overwrite one."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    if preset in raw:
        raise ConfigError(f"{path}: preset [{preset}] exists already; choose another name")
    body = cfg.model_dump(exclude_defaults=False)
    model = body.pop("model")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [
        "",
        (
            f"# Written by `modelfn tune` on {stamp}: trial {trial.number} of its study, {what} "
            f"{trial.value:.4f} on held-out training data."
        ),
        f"[{preset}]",
        *(f"{k} = {_toml(v)}" for k, v in body.items() if v is not None),
        "",
        f"[{preset}.model]",
        *(f"{k} = {_toml(v)}" for k, v in model.items()),
    ]
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    load_preset(path, preset, type(cfg))  # the file still validates, with the new preset in it


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"cannot write {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")
