import pytest
import torch

from architectures.cifar10_cnn import Cifar10CNN, Cifar10CNNConfig


def test_forward_shapes_for_any_batch():
    model = Cifar10CNN(Cifar10CNNConfig(width=4)).eval()
    for batch in (1, 5):
        assert model(torch.randn(batch, 3, 32, 32)).shape == (batch, 10)


def test_config_sets_classes_and_width():
    model = Cifar10CNN(Cifar10CNNConfig(num_classes=3, width=8, residual_stages=())).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert model.head.in_features == 64  # stages widen 8 -> 16 -> 32 -> 64
    assert not any(type(m).__name__ == "ResidualBlock" for m in model.modules())


def test_residual_blocks_go_where_configured():
    model = Cifar10CNN(Cifar10CNNConfig(width=4, residual_stages=(0, 2)))
    has_block = [
        any(type(m).__name__ == "ResidualBlock" for m in s.modules()) for s in model.stages
    ]
    assert has_block == [True, False, True]


def test_dropout_is_active_only_in_training():
    torch.manual_seed(0)
    model = Cifar10CNN(Cifar10CNNConfig(width=4, dropout=0.5))
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_patch_whitening_decorrelates_the_training_patches_and_stays_frozen():
    torch.manual_seed(0)
    # Correlated channels, as in real images: green and blue follow red.
    red = torch.randn(64, 1, 32, 32)
    images = torch.cat([red, 0.9 * red + 0.1 * torch.randn_like(red), 0.5 * red], 1)
    model = Cifar10CNN(Cifar10CNNConfig(width=4, whiten=True))
    whitening = model.stem[0]
    model.init_from_data(images)
    assert not whitening.weight.requires_grad and whitening.bias.requires_grad
    out = torch.nn.functional.conv2d(images, whitening.weight[:12])  # the positive half
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = torch.cov(flat.T)
    # Unit variance where the data varies (the eps term damps the near-empty directions),
    # and no correlation between the channels.
    off_diagonal = cov - torch.diag(torch.diag(cov))
    assert off_diagonal.abs().max() < 1e-3
    assert torch.diag(cov).max() == pytest.approx(1.0, abs=0.01)
    assert torch.equal(whitening.weight[12:], -whitening.weight[:12])
    assert model(images[:2]).shape == (2, 10)


def test_flip_averaging_happens_in_eval_mode_only():
    torch.manual_seed(0)
    model = Cifar10CNN(Cifar10CNNConfig(width=4, tta_flip=True, dropout=0.0)).eval()
    x = torch.randn(3, 3, 32, 32)
    both = model(x)
    torch.testing.assert_close(both, 0.5 * (model.logits(x) + model.logits(x.flip(3))))
    torch.testing.assert_close(model(x.flip(3)), both)  # a mirror image gets the same answer
    model.train()
    assert model(x).shape == (3, 10)
