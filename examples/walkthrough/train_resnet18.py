"""A ResNet-18 trained elsewhere, the way a user's own script trains one: plain torch, no modelfn.

The walk-through in docs/import.md starts here. It trains torchvision's ResNet-18 layout
(tests/support/resnet.py writes it out, because torchvision's wheel does not load against the CPU
torch of our build machines; with torchvision, `torchvision.models.resnet18` is the same network)
for about a minute on the CIFAR-10 sample's 800 training images, then leaves in OUT what a user
hands to `modelfn import`:

- `resnet18.safetensors`: the state dict (a `.pt` from `torch.save(model.state_dict())` works too);
- `labels.txt`: the class names in logit order;
- `test-0.png` .. `test-3.png`: four held-out images for the import's parity gate and API docs;
- `photos/<label>/*.png`: the 200 held-out test images, a folder per label, for `modelfn evaluate`.

    .venv/bin/python -m examples.walkthrough.train_resnet18 --seconds 60 --out build/walkthrough
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from tests.support.resnet import resnet18

CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar-10-batches-py"
# CIFAR-10's training-set channel statistics: what the model is normalised with, and so what the
# import must declare (--mean/--std).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
BATCH = 64
LR = 2e-3  # Adam, per batch of 64
EXAMPLES = 4


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The official CIFAR-10 python format: uint8 [N, 3, 32, 32] images and int labels."""
    with path.open("rb") as f:
        batch = pickle.load(f, encoding="bytes")  # the data set's own format, not a model
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(batch[b"labels"], dtype=np.int64)


def normalise(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float() / 255.0
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        batches = [normalise(images[i : i + 256]) for i in range(0, len(images), 256)]
        predicted = torch.cat([model(x).argmax(1) for x in batches])
    return float((predicted.numpy() == labels).mean())


def train(seconds: float, seed: int = 0) -> tuple[nn.Module, float]:
    """Trains on the sample's training batch until `seconds` have passed (checked every batch);
    returns (model, epochs run, fractional)."""
    torch.manual_seed(seed)
    images, labels = read_batch(CIFAR / "data_batch_1")
    model = resnet18(num_classes=10)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(seed)
    start, seen = time.monotonic(), 0
    model.train()
    while time.monotonic() - start < seconds:
        for batch in torch.randperm(len(images), generator=generator).split(BATCH):
            if time.monotonic() - start >= seconds:
                break
            x = normalise(images[batch.numpy()])
            flip = torch.rand(len(x), generator=generator) < 0.5  # the one augmentation
            x[flip] = x[flip].flip(3)
            loss = nn.functional.cross_entropy(model(x), torch.from_numpy(labels[batch.numpy()]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            seen += len(batch)
    return model.eval(), seen / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time (default 60)")
    parser.add_argument("--out", type=Path, default=Path("build/walkthrough"))
    args = parser.parse_args()
    model, epochs = train(args.seconds)
    with (CIFAR / "batches.meta").open("rb") as f:
        names = [n.decode() for n in pickle.load(f, encoding="bytes")[b"label_names"]]
    test_images, test_labels = read_batch(CIFAR / "test_batch")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(out / "resnet18.safetensors"))
    (out / "labels.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    for i, (image, label) in enumerate(zip(test_images, test_labels, strict=True)):
        picture = Image.fromarray(image.transpose(1, 2, 0))
        if i < EXAMPLES:
            picture.save(out / f"test-{i}.png")
        folder = out / "photos" / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture.save(folder / f"{i:03d}.png")
    print(
        f"trained {epochs:.1f} epochs in {args.seconds:.0f} s: test accuracy "
        f"{accuracy(model, test_images, test_labels):.3f} on {len(test_labels)} images; wrote {out}"
    )


if __name__ == "__main__":
    main()
