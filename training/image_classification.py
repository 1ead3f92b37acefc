"""The image-classification task: normalise, train, evaluate on the test split, report.

Consumes any data set shaped like `training.data.cifar10.Cifar10` (`train`/`test` splits of uint8
NCHW images and int64 labels, plus `label_names`), so another image data set joins as a loader.
The normalisation comes from the `ImagePreprocessing` that goes into the manifest, so serving
replays exactly what training did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from modelfn.artifact import ImagePreprocessing
from training.config import ImageClassifierConfig
from training.errors import TrainingError
from training.examples import image_examples
from training.export_onnx import INPUT_NAME, OUTPUT_NAME, GraphTensor
from training.loop import evaluate, make_optimizer, train_one_epoch
from training.metrics import classification_report
from training.progress import Progress
from training.reference import image_reference
from training.run import Run
from training.trained_model import Evaluation, TrainedModel, most_confident_mistakes


def normalise(images: np.ndarray, pre: ImagePreprocessing) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> float32 [N, 3, H, W]: /255, then (x - mean) / std per channel."""
    x = torch.from_numpy(images).float().div_(255.0)
    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    return (x - mean) / std


def train_image_classifier(
    build: Callable[..., nn.Module],
    data: Any,
    pre: ImagePreprocessing,
    cfg: ImageClassifierConfig,
    generator: torch.Generator,
    run: Run,
) -> TrainedModel:
    log, device = run.log, run.device
    train_x = normalise(data.train.images, pre).to(device)
    train_y = torch.from_numpy(data.train.labels).to(device)
    test_x = normalise(data.test.images, pre).to(device)
    test_y = torch.from_numpy(data.test.labels).to(device)
    num_classes = len(data.label_names)
    held = data.test.name  # "test", or "validation" when modelfn tune carved one from training
    if cfg.early_stopping_patience is not None:
        raise TrainingError(
            "image-classification trains on every training image and has no validation split to stop on; remove early_stopping_patience"
        )
    model = build(num_classes=num_classes).to(device)
    # A model that sets a layer from the data (the CNN's patch whitening) does so here, before
    # DDP copies rank 0's weights to the other ranks.
    init_from_data = getattr(model, "init_from_data", None)
    if init_from_data is not None:
        init_from_data(train_x)

    steps_per_epoch = len(train_y) // cfg.batch_size
    if steps_per_epoch == 0:
        raise TrainingError(
            f"batch_size {cfg.batch_size} is larger than the {len(train_y)} training images; "
            "lower batch_size in the training config or train on more data"
        )
    ranks = run.ranks
    # DDP under torchrun: each rank its share of a batch, the gradient the whole batch's.
    learner = ranks.wrap(model, batch_size=cfg.batch_size, device=device)
    optimizer = make_optimizer(model, cfg)
    log(
        f"training on {len(train_y)} images, scoring {len(test_y)} {held} images: {cfg.epochs} epochs x "
        f"{steps_per_epoch} steps of {cfg.batch_size}, {cfg.optimizer}, peak lr {cfg.lr}, {cfg.schedule}"
    )

    resumed = run.resume(model, optimizer, generator)
    step, history = resumed.step, resumed.history
    # Training time counts across interruptions: the clock starts where the last run stopped.
    start = time.perf_counter() - resumed.seconds
    bar = Progress(cfg.epochs * steps_per_epoch, enabled=run.progress, initial=step)
    for epoch in range(resumed.epoch + 1, cfg.epochs + 1):
        train_loss, step = train_one_epoch(
            learner,
            train_x,
            train_y,
            optimizer,
            cfg,
            step=step,
            steps_per_epoch=steps_per_epoch,
            generator=generator,
            on_step=bar.step,
            ranks=ranks,
        )
        test_loss, logits = evaluate(model, test_x, test_y, cfg.eval_batch_size)
        acc = float((logits.argmax(1) == test_y).float().mean())
        history.append(
            {
                "epoch": epoch,
                "seconds": time.perf_counter() - start,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
                f"{held}_loss": test_loss,
                f"{held}_accuracy": acc,
            }
        )
        run.checkpoint(
            epoch=epoch,
            step=step,
            model=model,
            optimizer=optimizer,
            generator=generator,
            history=history,
        )
        log(
            f"epoch {epoch:3d}/{cfg.epochs}  train loss {train_loss:.4f}  {held} loss {test_loss:.4f}  "
            f"{held} acc {acc:.2%}  ({time.perf_counter() - start:.1f} s)"
        )
        run.epoch_done(history[-1])
    bar.close()
    seconds = time.perf_counter() - start
    if resumed.epoch == cfg.epochs:  # a run interrupted after its last epoch: evaluate it here
        test_loss, logits = evaluate(model, test_x, test_y, cfg.eval_batch_size)
        train_loss = history[-1]["train_loss"]

    # The last epoch's evaluation is the final one (epochs >= 1): no second pass over the test
    # set. Figures, export and parity run on the CPU.
    model, logits, test_x, test_y = model.cpu(), logits.cpu(), test_x.cpu(), test_y.cpu()
    report = classification_report(test_y.numpy(), logits.argmax(1).numpy(), num_classes)
    metrics = {
        "accuracy": report.accuracy,
        "macro_precision": report.macro_precision,
        "macro_recall": report.macro_recall,
        "macro_f1": report.macro_f1,
        f"{held}_loss": test_loss,
        "train_loss": train_loss,
        **{f"f1.{name}": float(v) for name, v in zip(data.label_names, report.f1)},
    }
    log(
        f"{held} accuracy {report.accuracy:.2%}  macro F1 {report.macro_f1:.3f}  "
        f"(precision {report.macro_precision:.3f}, recall {report.macro_recall:.3f}) on {len(test_y)} images"
    )
    c, h, w = train_x.shape[1:]
    return TrainedModel(
        model=model.eval(),
        labels=list(data.label_names),
        preprocessing=pre,
        inputs=[GraphTensor(INPUT_NAME, "FP32", ("batch", c, h, w))],
        outputs=[GraphTensor(OUTPUT_NAME, "FP32", ("batch", num_classes))],
        metrics=metrics,
        seconds=seconds,
        export_example=(test_x[:2].clone(),),
        parity_feeds={INPUT_NAME: test_x[: cfg.parity_images].numpy().copy()},
        evaluation=Evaluation(
            history=history,
            classes=report,
            mistakes=most_confident_mistakes(
                torch.softmax(logits, 1).numpy(),
                test_y.numpy(),
                data.label_names,
                image=data.test.images,
            ),
        ),
        examples=image_examples(data.test.images, data.test.labels, data.label_names, held),
        reference=image_reference(data.test.images, logits.numpy(), data.label_names, held),
    )
