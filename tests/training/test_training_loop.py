import itertools

import pytest
import torch

from architectures.cifar10_cnn import Cifar10CNN, Cifar10CNNConfig
from training.config import ImageClassifierConfig
from training.loop import (
    augment,
    autocast,
    get_lr,
    make_optimizer,
    precision_in_use,
    seed_everything,
    train_one_epoch,
)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_lr_warms_up_peaks_and_decays_to_zero(schedule):
    lr = [
        get_lr(s, total_steps=100, warmup_steps=10, peak_lr=1.0, schedule=schedule)
        for s in range(101)
    ]
    assert lr[0] == pytest.approx(0.1)
    assert lr[5] == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr[10] == pytest.approx(1.0)
    assert lr[100] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(lr[10:]))
    # Halfway through the decay both give 0.5; a third of the way in, linear gives 2/3 and
    # cosine 0.5 * (1 + cos(pi/3)) = 0.75.
    assert lr[10 + 45] == pytest.approx(0.5)
    assert lr[10 + 30] == pytest.approx(2 / 3 if schedule == "onecycle" else 0.75)


def test_augment_keeps_shape_and_changes_images():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = augment(x, padding=2, hflip=True, generator=g)
    assert out.shape == x.shape
    assert not torch.equal(out, x)
    assert torch.equal(augment(x, padding=0, hflip=False, generator=g), x)


def test_same_seed_same_weights():
    cfg = ImageClassifierConfig(
        epochs=1,
        batch_size=16,
        optimizer="sgd-nesterov",
        lr=0.1,
        weight_decay=5e-4,
        schedule="onecycle",
        warmup_epochs=0.5,
        label_smoothing=0.1,
        crop_padding=2,
        hflip=True,
    )

    def run(seed):
        g = seed_everything(seed)
        model = Cifar10CNN(Cifar10CNNConfig(width=4))
        x, y = torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)
        loss, step = train_one_epoch(
            model,
            x,
            y,
            make_optimizer(model, cfg),
            cfg,
            step=0,
            steps_per_epoch=4,
            generator=g,
        )
        assert step == 4 and loss > 0
        return model.state_dict()

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_best_checkpoint_keeps_the_best_epoch_and_says_when_to_stop():
    from training.loop import BestCheckpoint

    model = torch.nn.Linear(2, 1)
    best = BestCheckpoint(patience=2, lower_is_better=True)
    weights = []
    for epoch, value in enumerate([5.0, 3.0, 4.0, 3.5], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        weights.append(model.weight.clone())
        stop = best.update(epoch, value, model)
        assert stop == (epoch == 4)  # two epochs after the best (2) without a better value
    best.restore(model)
    assert best.best_epoch == 2 and best.best == 3.0
    assert torch.equal(model.weight, weights[1])
    higher = BestCheckpoint(patience=1, lower_is_better=False)
    assert not higher.update(1, 0.5, model) and higher.update(2, 0.4, model)


def test_lookahead_pulls_the_weights_halfway_back_and_leaves_no_state_between_epochs():
    from training.loop import Lookahead

    model = torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    lookahead = Lookahead(model, alpha=0.5)
    with torch.no_grad():
        model.weight.fill_(3.0)
        model.running_mean.fill_(4.0)
    lookahead.sync()
    # slow moved half way (1 -> 2) and the trained weights restart from it; buffers too.
    assert torch.equal(model.weight, torch.full((2,), 2.0))
    assert torch.equal(model.running_mean, torch.full((2,), 2.0))
    assert model.num_batches_tracked.dtype == torch.int64  # integers are left alone


def test_lookahead_epochs_train_and_stay_reproducible():
    cfg = ImageClassifierConfig(
        epochs=1, batch_size=16, optimizer="sgd-nesterov", lr=0.1, weight_decay=5e-4,
        schedule="onecycle", label_smoothing=0.1, crop_padding=2, hflip=True, lookahead_every=3,
    )  # fmt: skip

    def run():
        g = seed_everything(0)
        model = Cifar10CNN(Cifar10CNNConfig(width=4, whiten=True))
        x, y = torch.randn(64, 3, 32, 32, generator=g), torch.randint(0, 10, (64,), generator=g)
        model.init_from_data(x)
        frozen = model.stem[0].weight.clone()
        train_one_epoch(
            model, x, y, make_optimizer(model, cfg), cfg, step=0, steps_per_epoch=4, generator=g
        )
        assert torch.equal(model.stem[0].weight, frozen)  # the whitening never trains
        return model.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_device_is_the_gpu_when_present_and_can_be_forced(monkeypatch):
    from training.loop import DEVICE_ENV, training_device

    monkeypatch.delenv(DEVICE_ENV, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert training_device().type == expected
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert training_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv(DEVICE_ENV, "cuda")
        with pytest.raises(
            RuntimeError, match="MODELFN_DEVICE=cuda, but torch sees no CUDA device"
        ):
            training_device()


def _bf16_preset() -> ImageClassifierConfig:
    return ImageClassifierConfig(
        epochs=1,
        batch_size=4,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=0.0,
        schedule="cosine",
        precision="bf16",
        label_smoothing=0.0,
        crop_padding=0,
        hflip=False,
    )


def test_a_bf16_preset_runs_an_lstm_on_any_cpu():
    # ptb-lstm's presets ask for bf16; on a CPU without bf16 kernels (AVX2 only) oneDNN has no
    # bf16 LSTM and autocast raised "could not create a primitive descriptor": make demo died.
    lstm = torch.nn.LSTM(8, 8, batch_first=True)
    with autocast(_bf16_preset()):
        out, _ = lstm(torch.randn(2, 3, 8))
    assert out.shape == (2, 3, 8)


def test_bf16_falls_back_to_fp32_where_the_cpu_has_none_and_says_so(monkeypatch):
    import contextlib

    monkeypatch.setattr("training.loop.bf16_runs_on", lambda device_type: False)
    assert isinstance(autocast(_bf16_preset()), contextlib.nullcontext)
    assert precision_in_use(_bf16_preset()).startswith("fp32 (bf16 asked")
    monkeypatch.setattr("training.loop.bf16_runs_on", lambda device_type: True)
    assert isinstance(autocast(_bf16_preset()), torch.autocast)
    assert precision_in_use(_bf16_preset()) == "bf16"
