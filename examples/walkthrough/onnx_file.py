"""An ONNX file from another team, as `modelfn import ... --task tensor` takes it: any graph, its
tensors in and out, no pre- or post-processing.

Here the file is a small scoring network (8 features in, 3 scores out) exported with
`torch.onnx.export` and a dynamic batch axis, as most ONNX files are made; its weights are seeded,
since what the walk-through shows is the serving of a graph, not what it learned. Writes into OUT:
`scorer.onnx` and `example.json` (one example of named tensors, without the batch axis).

    .venv/bin/python -m examples.walkthrough.onnx_file --out build/walkthrough
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

FEATURES = 8


def scorer() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("build/walkthrough"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch")
    torch.onnx.export(
        scorer(),
        (torch.randn(2, FEATURES),),
        str(args.out / "scorer.onnx"),
        input_names=["features"],
        output_names=["scores"],
        dynamic_shapes={"input": {0: batch}},
        dynamo=True,
        external_data=False,  # one self-contained file
    )
    example = {"features": [round(0.25 * i - 1.0, 2) for i in range(FEATURES)]}
    (args.out / "example.json").write_text(json.dumps(example) + "\n", encoding="utf-8")
    print(f"wrote {args.out / 'scorer.onnx'} and {args.out / 'example.json'}")


if __name__ == "__main__":
    main()
