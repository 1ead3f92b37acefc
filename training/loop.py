"""The training loop, read top to bottom: threads and seeds, the LR schedule, the optimiser step
(gradient clipping, mixed precision), augmentation, one epoch of image training, evaluation, and
truncated back-propagation through time for language models. Plain functions over tensors; no
trainer class, no callbacks. Every task's trainer builds its epochs from these pieces.

Tensors here: images float32 [N, 3, H, W], already normalised; labels int64 [N]; a token stream
int64 [N].
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ImageClassifierConfig, OptimisationConfig
from training.distributed import SINGLE, Ranks, unwrap

# Called after every optimiser step with its loss (nats) and learning rate (the progress bar).
StepHook = Callable[[float, float], None]


def set_threads() -> int:
    """Use one intra-op thread per CPU this process may run on (2 on the build machine).

    `sched_getaffinity` respects container CPU limits where `os.cpu_count()` reports the host's
    cores; more threads than cores makes conv backward slower, not faster, and two processes
    that each take every core crawl (seen here: 15x slower), so torchrun's ranks on one machine
    (LOCAL_WORLD_SIZE) share the cores out.
    """
    cpus = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    cpus //= int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, cpus))
    return torch.get_num_threads()


DEVICE_ENV = "MODELFN_DEVICE"  # "cpu", "cuda" or "cuda:N": overrides the choice below


def training_device() -> torch.device:
    """Where the image and language-model trainers run: $MODELFN_DEVICE, else the GPU when one
    is present (under torchrun, the GPU of this process's LOCAL_RANK), else the CPU.

    The text classifier and ONNX export always run on the CPU; the trainers hand the model back
    on the CPU.
    """
    chosen = os.environ.get(DEVICE_ENV)
    if chosen:
        device = torch.device(chosen)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={chosen}, but torch sees no CUDA device here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


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
    steps_per_epoch: int = 1,
    decay_after_epochs: int = 0,
    decay_factor: float = 0.5,
) -> float:
    """Learning rate at optimiser step `step` (0-based).

    Every schedule warms up linearly from `peak_lr * start_fraction` to `peak_lr` over
    `warmup_steps` (large early steps with freshly initialised BatchNorm diverge), then:
    "onecycle" decays linearly to 0 at `total_steps` (Smith & Topin 2017, as in airbench),
    "cosine" along a half cosine to 0 (Loshchilov & Hutter 2016, without restarts), and "step"
    keeps `peak_lr` for `decay_after_epochs` epochs, then multiplies it by `decay_factor` at the
    start of every later epoch (Zaremba et al. 2014: lr 1, halved each epoch after the 4th).
    """
    if step < warmup_steps:
        return peak_lr * (start_fraction + (1 - start_fraction) * step / warmup_steps)
    if schedule == "step":
        epoch = step // max(1, steps_per_epoch)  # 0-based
        return float(peak_lr * decay_factor ** max(0, epoch + 1 - decay_after_epochs))
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "onecycle":
        return peak_lr * (1 - progress)
    if schedule == "cosine":
        return peak_lr * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown LR schedule {schedule!r}; use 'onecycle', 'cosine' or 'step'")


def lr_at(step: int, cfg: OptimisationConfig, *, steps_per_epoch: int) -> float:
    """`get_lr` with the schedule of a training config."""
    return get_lr(
        step,
        total_steps=cfg.epochs * steps_per_epoch,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        peak_lr=cfg.lr,
        schedule=cfg.schedule,
        start_fraction=cfg.warmup_start_fraction,
        steps_per_epoch=steps_per_epoch,
        decay_after_epochs=cfg.decay_after_epochs,
        decay_factor=cfg.decay_factor,
    )


def make_optimizer(model: nn.Module, cfg: OptimisationConfig) -> torch.optim.Optimizer:
    """SGD (plain or Nesterov) or AdamW; weight decay only on matrices (conv, linear, embedding).

    BatchNorm scales/shifts and biases (1-D parameters) are left undecayed: decaying them only
    fights the normalisation (see "Bag of Tricks", He et al. 2018, section 3.1).
    """
    trained = [p for p in model.parameters() if p.requires_grad]  # not frozen ones (whitening)
    decay = [p for p in trained if p.ndim > 1]
    no_decay = [p for p in trained if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd-nesterov":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


@functools.cache
def bf16_runs_on(device_type: str) -> bool:
    """Whether bfloat16 autocast runs here: a CPU without bf16 instructions (AVX512-BF16 or AMX)
    has no oneDNN bf16 LSTM ("could not create a primitive descriptor for the LSTM forward
    propagation primitive"), so one small LSTM and Linear are tried once under autocast."""
    if device_type != "cpu":
        return True  # CUDA autocast has bf16 kernels for every op the trainers use
    probe = nn.LSTM(8, 8, batch_first=True)
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            probe(torch.zeros(1, 2, 8))
            nn.functional.linear(torch.zeros(2, 8), torch.zeros(8, 8))
    except RuntimeError:
        return False
    return True


def precision_in_use(cfg: OptimisationConfig, device_type: str = "cpu") -> str:
    """The precision training runs at: the preset's, except bf16 where this machine cannot."""
    if cfg.precision == "bf16" and not bf16_runs_on(device_type):
        return "fp32 (bf16 asked, but this CPU has no bf16 kernels)"
    return cfg.precision


def autocast(
    cfg: OptimisationConfig, device_type: str = "cpu"
) -> contextlib.AbstractContextManager[object]:
    """bfloat16 autocast (CPU or GPU) where the config asks for it and the machine runs it;
    weights and losses stay fp32.

    On CPUs with AVX512-BF16 (the AMD EPYC build machine) the LSTM language model trains about
    1.3x faster this way (docs/training.md has the measurement); elsewhere (an AVX2-only CPU)
    the same preset trains in fp32, and the trainer's first line says so (`precision_in_use`).
    """
    if cfg.precision == "bf16" and bf16_runs_on(device_type):
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def optimizer_step(
    model: nn.Module,
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    *,
    lr: float,
    grad_clip: float | None,
) -> None:
    """Backward, clip the global gradient norm to `grad_clip` (if set), step at learning rate `lr`.

    Clipping bounds the step when a gradient explodes, which recurrent networks do (Pascanu et
    al. 2013); Zaremba et al. clip at norm 5.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave it untyped
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()


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
        flip = (torch.rand(b, generator=generator) < 0.5).to(images.device)
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out


class Lookahead:
    """Slow weights that follow the trained ("fast") ones: `sync` moves the slow weights `alpha`
    of the way to the fast ones and sets the fast ones to the result (Zhang et al. 2019). Taken
    over parameters and the floating-point buffers (BatchNorm statistics), like airbench's
    averaged weights. Made at the start of an epoch, synced at its end, so the model holds the
    slow weights between epochs and a checkpoint needs no extra state.
    """

    def __init__(self, model: nn.Module, alpha: float) -> None:
        self.alpha = alpha
        self.tensors = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.slow = [t.detach().clone() for t in self.tensors]

    @torch.no_grad()
    def sync(self) -> None:
        for fast, slow in zip(self.tensors, self.slow, strict=True):
            slow.lerp_(fast, self.alpha)
            fast.copy_(slow)


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    cfg: ImageClassifierConfig,
    *,
    step: int,
    steps_per_epoch: int,
    generator: torch.Generator,
    on_step: StepHook | None = None,
    ranks: Ranks = SINGLE,
) -> tuple[float, int]:
    """One shuffled pass over the training set; returns (mean training loss, next step).

    Under torchrun each rank trains on its share of every batch (`ranks.shard`; every rank
    draws the same order from the same generator) and DDP averages the gradients.
    """
    model.train()
    order = torch.randperm(len(labels), generator=generator)
    total_loss, seen = 0.0, 0
    every = cfg.lookahead_every or 0
    lookahead = Lookahead(unwrap(model), cfg.lookahead_alpha) if every else None
    # drop_last: a tiny final batch gives BatchNorm noisy statistics for a full step.
    for i in range(steps_per_epoch):
        idx = ranks.shard(order[i * cfg.batch_size : (i + 1) * cfg.batch_size])
        x = augment(images[idx], padding=cfg.crop_padding, hflip=cfg.hflip, generator=generator)
        y = labels[idx]
        with autocast(cfg, x.device.type):
            loss = F.cross_entropy(model(x).float(), y, label_smoothing=cfg.label_smoothing)
        lr = lr_at(step, cfg, steps_per_epoch=steps_per_epoch)
        optimizer_step(model, loss, optimizer, lr=lr, grad_clip=cfg.grad_clip)
        total_loss += loss.item() * len(y)
        seen += len(y)
        step += 1
        if lookahead is not None and ((i + 1) % every == 0 or i + 1 == steps_per_epoch):
            lookahead.sync()
        if on_step is not None:
            on_step(loss.item(), lr)
    return ranks.mean(total_loss / max(1, seen)), step


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


# --- truncated back-propagation through time (language models) --------------------------------


def batchify(stream: torch.Tensor, rows: int) -> torch.Tensor:
    """Token stream int64 [N] -> [rows, N // rows]: row r is the r-th contiguous slice.

    Each row is read left to right across the epoch, so the recurrent state at the end of one
    window is the true context of the next (the tail that does not fill a row is dropped).
    """
    columns = len(stream) // rows
    if columns < 2:
        raise ValueError(f"{len(stream)} tokens cannot fill {rows} rows of at least 2 tokens")
    return stream[: rows * columns].view(rows, columns)


def bptt_windows(columns: int, bptt: int) -> Iterator[tuple[int, int]]:
    """(start, length) of each window over `columns` tokens; a window predicts start+1..start+length."""
    for start in range(0, columns - 1, bptt):
        yield start, min(bptt, columns - 1 - start)


def bptt_batches(rows: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets) windows over `rows` [B, L]: targets are the inputs shifted by one token."""
    for start, length in bptt_windows(rows.shape[1], bptt):
        yield rows[:, start : start + length], rows[:, start + 1 : start + 1 + length]


def train_bptt_epoch(
    model: nn.Module,
    rows: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    cfg: OptimisationConfig,
    *,
    bptt: int,
    step: int,
    steps_per_epoch: int,
    on_step: StepHook | None = None,
    ranks: Ranks = SINGLE,
) -> tuple[float, int]:
    """One pass over `rows` [B, L] in windows of `bptt` tokens; returns (mean loss in nats, next step).

    Truncated back-propagation through time (Williams & Peng 1990; Zaremba et al. 2014): the
    state flows from window to window, gradients stop at window edges (`detach`), so memory and
    time per step stay fixed however long the stream. `model(tokens, *state)` returns
    `(logits [B, T, V], *new_state)`. Under torchrun `rows` are this rank's streams and the loss
    returned is averaged over the ranks.
    """
    model.train()
    state: tuple[torch.Tensor, ...] = unwrap(model).initial_state(len(rows), rows.device)  # type: ignore[operator]
    total_loss, seen = 0.0, 0
    for x, y in bptt_batches(rows, bptt):
        state = tuple(s.detach() for s in state)
        with autocast(cfg, rows.device.type):
            logits, *new_state = model(x, *state)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        state = tuple(s.float() for s in new_state)
        lr = lr_at(step, cfg, steps_per_epoch=steps_per_epoch)
        optimizer_step(model, loss, optimizer, lr=lr, grad_clip=cfg.grad_clip)
        total_loss += loss.item() * y.numel()
        seen += y.numel()
        step += 1
        if on_step is not None:
            on_step(loss.item(), lr)
    return ranks.mean(total_loss / max(1, seen)), step


@torch.no_grad()
def evaluate_stream(model: nn.Module, rows: torch.Tensor, bptt: int) -> float:
    """Mean negative log-likelihood (nats per token) of `rows` [B, L], state carried throughout."""
    model.eval()
    state: tuple[torch.Tensor, ...] = model.initial_state(len(rows), rows.device)  # type: ignore[operator]
    total, seen = 0.0, 0
    for x, y in bptt_batches(rows, bptt):
        logits, *state_list = model(x, *state)
        state = tuple(state_list)
        total += F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
        ).item()
        seen += y.numel()
    return total / seen


# --- early stopping ----------------------------------------------------------------------------


class BestCheckpoint:
    """The best epoch's weights so far, by a validation metric, and when to stop looking.

    Holds a copy of the state dict (parameters and buffers) of the best epoch in memory; a small
    model's copy costs less than the epoch that might beat it.
    """

    def __init__(self, *, patience: int, lower_is_better: bool) -> None:
        self.patience = patience
        self.sign = 1.0 if lower_is_better else -1.0
        self.best = math.inf
        self.best_epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, value: float, model: nn.Module) -> bool:
        """Record epoch `epoch`'s metric; True when training should stop."""
        if self.sign * value < self.best:
            self.best, self.best_epoch = self.sign * value, epoch
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return epoch - self.best_epoch >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best epoch's weights back into `model` (no-op before any update)."""
        if self.state is not None:
            model.load_state_dict(self.state)
