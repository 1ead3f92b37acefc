"""Real test inputs for a model served by `modelfn serve`, as clients would send them, to see
capture and drift at work (docs/serving.md, "Sampled capture" and "Drift reports").

cifar10-cnn gets CIFAR-10 test images as PNGs, `--brighter N` adding N to every pixel (a camera
whose exposure changed); imdb-sentiment gets IMDB test reviews, or with `--ptb` Penn Treebank
news sentences (inputs of another kind altogether). Batches of 16, from ../shared/data.

    .venv/bin/python -m examples.walkthrough.send_traffic cifar10-cnn --count 200 [--brighter 50]
    .venv/bin/python -m examples.walkthrough.send_traffic imdb-sentiment --count 300 [--ptb]
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import numpy as np

from tools.evaluate import png_base64
from tools.paths import SERVE_PORT
from training.data.location import data_root_for

BATCH = 16


def inputs_of(model: str, count: int, brighter: int, ptb: bool) -> list[Any]:
    if model == "cifar10-cnn":
        from training.data.cifar10 import load_cifar10

        subdir = "cifar-10-batches-py"
        images = load_cifar10(data_root_for(None, subdir) / subdir).test.images[:count]
        shifted = np.clip(images.astype(np.int16) + brighter, 0, 255).astype(np.uint8)
        return [png_base64(image) for image in shifted]
    if model == "imdb-sentiment" and ptb:
        from training.data.ptb import load_ptb

        return [" ".join(s) for s in load_ptb(data_root_for(None, "ptb") / "ptb").test[:count]]
    if model == "imdb-sentiment":
        from training.data.imdb import load_imdb

        return list(load_imdb(data_root_for(None, "imdb") / "imdb").test.texts[:count])
    raise SystemExit(f"{model}: this script sends cifar10-cnn's or imdb-sentiment's test inputs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=["cifar10-cnn", "imdb-sentiment"])
    parser.add_argument("--url", default=f"http://127.0.0.1:{SERVE_PORT}")
    parser.add_argument("--count", type=int, default=200, help="inputs to send")
    parser.add_argument("--brighter", type=int, default=0, help="add this to every pixel")
    parser.add_argument(
        "--ptb", action="store_true", help="send news sentences to the reviews model"
    )
    args = parser.parse_args()
    inputs = inputs_of(args.model, args.count, args.brighter, args.ptb)
    with httpx.Client(base_url=args.url, timeout=60) as client:
        for start in range(0, len(inputs), BATCH):
            reply = client.post(
                f"/models/{args.model}/predict", json={"inputs": inputs[start : start + BATCH]}
            )
            reply.raise_for_status()
    print(f"sent {len(inputs)} inputs to {args.model} in {-(-len(inputs) // BATCH)} requests")


if __name__ == "__main__":
    main()
