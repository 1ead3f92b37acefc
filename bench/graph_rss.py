"""Peak RSS of the function's onnxruntime session: one graph file vs graph + external data.

    .venv/bin/python -m bench.graph_rss --mib 512

Builds a synthetic graph of `--mib` MiB of fp32 weights (a chain of square MatMuls, random
values), writes it as one file and as `model.onnx` + `model.onnx.data` through the one writer
(`modelfn.onnx_graph.save_graph`), and for each layout starts a fresh Python process that builds
the session exactly as the function does (`functions.onnx_session.create_session`, the optimised
graph cache off) and runs it once. Prints the process's peak RSS (`VmHWM`; not `ru_maxrss`, which
Linux carries over from the parent across exec) and its RSS after the run, less the same
process's RSS before the session, as MiB and as a multiple of the weights' size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from modelfn.artifact import ONNX_DATA_FILE, ONNX_FILE, describe_files
from modelfn.onnx_graph import save_graph

DIM = 2048  # one 2048 x 2048 fp32 matrix: 16 MiB

_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from modelfn.artifact import FileEntry

def status_mib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

import onnxruntime  # its import is not the session's cost
from functions.onnx_session import create_session
folder, sha, size, external = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
before = status_mib("VmRSS")
session = create_session(folder / "model.onnx", FileEntry(sha256=sha, size=size), None,
                         external_data=external)
session.run(None, {"x": np.ones((1, int(sys.argv[5])), np.float32)})
after = status_mib("VmRSS")
peak = status_mib("VmHWM")
print(json.dumps({"before": before, "after": after, "peak": peak}))
"""


def synthetic_graph(mib: int) -> object:
    from onnx import TensorProto, helper, numpy_helper

    layers = max(1, mib * (1 << 20) // (DIM * DIM * 4))
    rng = np.random.default_rng(0)
    weights, nodes = [], []
    for i in range(layers):
        w = (rng.standard_normal((DIM, DIM), dtype=np.float32) / DIM).astype(np.float32)
        weights.append(numpy_helper.from_array(w, name=f"w{i}"))
        nodes.append(helper.make_node("MatMul", [f"h{i}" if i else "x", f"w{i}"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("Identity", [f"h{layers}"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "rss",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", DIM])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", DIM])],
        initializer=weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def measure(folder: Path, external: bool) -> dict[str, float]:
    entry = describe_files(folder, [ONNX_FILE])[ONNX_FILE]
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(folder),
            entry.sha256,
            str(entry.size),
            str(int(external)),
            str(DIM),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=512, help="weights, MiB")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelfn-rss-") as tmp:
        single, external = Path(tmp, "single"), Path(tmp, "external")
        single.mkdir()
        external.mkdir()
        save_graph(synthetic_graph(args.mib), single / ONNX_FILE, threshold=2**31 - 1)
        save_graph(synthetic_graph(args.mib), external / ONNX_FILE, threshold=0)
        weights = (external / ONNX_DATA_FILE).stat().st_size / 2**20
        print(f"weights: {weights:.0f} MiB ({DIM}x{DIM} fp32 MatMuls)")
        for name, folder, ext in (("one file", single, False), ("external data", external, True)):
            m = measure(folder, ext)
            peak, held = m["peak"] - m["before"], m["after"] - m["before"]
            print(
                f"{name:<14} peak RSS +{peak:.0f} MiB ({peak / weights:.2f}x weights), "
                f"after one run +{held:.0f} MiB ({held / weights:.2f}x)"
            )


if __name__ == "__main__":
    main()
