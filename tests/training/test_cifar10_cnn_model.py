import torch

from training.models.cifar10_cnn import Cifar10CNN, Cifar10CNNConfig


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
