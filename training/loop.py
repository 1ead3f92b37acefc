"""The training loop, read top to bottom: threads and seeds, the LR schedule, augmentation, one
epoch of training, evaluation. Plain functions over tensors; no trainer class, no callbacks.

Tensors here: images float32 [N, 3, H, W], already normalised; labels int64 [N].
"""

from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ImageClassifierConfig


def set_threads() -> int:
    """Use one intra-op thread per CPU this process may run on (2 on the build machine).

    `sched_getaffinity` respects container CPU limits where `os.cpu_count()` reports the host's
    cores; more threads than cores makes conv backward slower, not faster.
    """
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    torch.set_num_threads(max(1, cpus))
    return torch.get_num_threads()


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (weight init, dropout) and return a generator for data order and augmentation."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_lr(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int,
    peak_lr: float,
    schedule: str,
    start_fraction: float = 0.1,
) -> float:
    """Learning rate at optimiser step `step` (0-based).

    Both schedules warm up linearly from `peak_lr * start_fraction` to `peak_lr` over
    `warmup_steps` (large early steps with freshly initialised BatchNorm diverge), then decay to
    0 at `total_steps`: "onecycle" linearly (Smith & Topin 2017, as in airbench), "cosine" along
    a half cosine (Loshchilov & Hutter 2016, without restarts).
    """
    if step < warmup_steps:
        return peak_lr * (start_fraction + (1 - start_fraction) * step / warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "onecycle":
        return peak_lr * (1 - progress)
    if schedule == "cosine":
        return peak_lr * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown LR schedule {schedule!r}; use 'onecycle' or 'cosine'")


def make_optimizer(model: nn.Module, cfg: ImageClassifierConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW; weight decay only on conv and linear weights.

    BatchNorm scales/shifts and biases (1-D parameters) are left undecayed: decaying them only
    fights the normalisation (see "Bag of Tricks", He et al. 2018, section 3.1).
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd-nesterov":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def augment(
    images: torch.Tensor, *, padding: int, hflip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Random crop after reflection padding, then random horizontal flip, per image.

    images: float32 [B, C, H, W] -> same shape. Reflection (not zero) padding, because zeros
    are a colour after normalisation and would teach the model a border.
    """
    b, _, h, w = images.shape
    out = images
    if padding > 0:
        padded = F.pad(images, (padding,) * 4, mode="reflect")
        dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).tolist()
        dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator).tolist()
        out = torch.stack(
            [padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(zip(dy, dx))]
        )
    if hflip:
        flip = torch.rand(b, generator=generator) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    cfg: ImageClassifierConfig,
    *,
    step: int,
    total_steps: int,
    steps_per_epoch: int,
    generator: torch.Generator,
) -> tuple[float, int]:
    """One shuffled pass over the training set; returns (mean training loss, next step)."""
    model.train()
    order = torch.randperm(len(labels), generator=generator)
    warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
    total_loss, seen = 0.0, 0
    # drop_last: a tiny final batch gives BatchNorm noisy statistics for a full step.
    for i in range(steps_per_epoch):
        idx = order[i * cfg.batch_size : (i + 1) * cfg.batch_size]
        x = augment(images[idx], padding=cfg.crop_padding, hflip=cfg.hflip, generator=generator)
        y = labels[idx]
        lr = get_lr(
            step,
            total_steps=total_steps,
            warmup_steps=warmup_steps,
            peak_lr=cfg.lr,
            schedule=cfg.schedule,
            start_fraction=cfg.warmup_start_fraction,
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave it untyped
        optimizer.step()
        total_loss += loss.item() * len(y)
        seen += len(y)
        step += 1
    return total_loss / max(1, seen), step


@torch.no_grad()
def evaluate(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> tuple[float, torch.Tensor]:
    """Mean cross-entropy (nats, no label smoothing) and logits [N, num_classes], in eval mode."""
    model.eval()
    logits = torch.cat(
        [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    )
    loss = F.cross_entropy(logits, labels).item()
    return loss, logits
