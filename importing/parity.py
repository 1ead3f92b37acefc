"""The parity gate: the graph the function will run must answer as the reference does.

Each input (an example, or a generated one) runs through onnxruntime at batch 1, and again as a
row of a batch of 3 (the inputs taken in turn, each batch of different rows where their shapes
allow), since the function batches requests. The reference is the user's torch module at batch 1
for a torch import; for an ONNX file, which has nothing else to compare against, it is
onnxruntime's own batch-1 answer, so the gate then checks that batching changes nothing. Any
difference over the tolerance, a NaN, or an output without the batch's rows refuses the import,
naming the output, the input and the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from importing.errors import ImportRefused, ParityRefused
from importing.tensors import numpy_dtype
from modelfn.artifact import TensorSpec

Feeds = dict[str, NDArray[Any]]
# Batch-1 feeds -> the outputs, in the graph's output order.
Reference = Callable[[Feeds], list[NDArray[Any]]]
BATCH = 3  # the batched run's size: more than 1, and odd, so no row lines up with a power of 2
GENERATED = 3  # inputs generated when the user gives no examples
DYNAMIC_SIZE = 5  # a generated input's size on dynamic axes other than the batch
INTEGER_HIGH = 10  # generated integer inputs are in [0, 10): valid ids for any table of 10 rows


# The cases' inputs as one batch, as the function would batch them.
Batcher = Callable[[list["Case"]], Feeds]


@dataclass(frozen=True)
class Case:
    """One input: its name in messages (a file name, `generated input 2`) and batch-1 feeds."""

    name: str
    feeds: Feeds
    text: str | None = None  # a text model's input, which batching tokenises again with padding


def generated_cases(inputs: list[TensorSpec], count: int = GENERATED, seed: int = 0) -> list[Case]:
    """Random inputs of the declared shapes, for a model imported without examples.

    Integer inputs are drawn from [0, INTEGER_HIGH): an index or token id past a table's size
    would fail in both runtimes and prove nothing; give examples for inputs with other ranges.
    """
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        feeds: Feeds = {}
        for spec in inputs:
            shape = [1] + [DYNAMIC_SIZE if d == -1 else d for d in spec.shape[1:]]
            dtype = numpy_dtype(spec)
            if spec.datatype in ("FP32", "FP16"):
                feeds[spec.name] = rng.standard_normal(shape).astype(dtype)
            elif spec.datatype == "BOOL":
                feeds[spec.name] = rng.integers(0, 2, shape).astype(bool)
            elif spec.datatype == "UINT8":
                feeds[spec.name] = rng.integers(0, 256, shape).astype(dtype)
            else:
                feeds[spec.name] = rng.integers(0, INTEGER_HIGH, shape).astype(dtype)
        cases.append(Case(name=f"generated input {i + 1}", feeds=feeds))
    return cases


def parity_gate(
    session: Any,
    cases: list[Case],
    reference: Reference | None,
    tolerance: float,
    log: Callable[[str], None],
    batch: Batcher | None = None,
) -> dict[str, float]:
    """Run every case as described above; the largest difference per output, or ParityRefused.

    `batch` makes the batched runs' feeds from their cases: a text model's texts tokenised
    together and padded to the longest, as the function pads them (so every batch holds
    different rows, whatever their lengths). Default: the cases' tensors concatenated.
    """
    names = [o.name for o in session.get_outputs()]
    worst = dict.fromkeys(names, 0.0)

    def run(feeds: Feeds, where: str) -> list[NDArray[Any]]:
        try:
            return list(session.run(None, feeds))
        except Exception as exc:
            raise ImportRefused(
                f"onnxruntime cannot run the graph on {where}: {str(exc).strip().splitlines()[0]}"
            ) from exc

    def compare(got: NDArray[Any], want: NDArray[Any], output: str, where: str) -> None:
        _same_shape(got.shape, want.shape, output, where)
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)), initial=0))
        if not diff <= tolerance:  # `not <=` also catches NaN
            raise ParityRefused(
                f"output {output!r} differs on {where} by {diff:.3g} (tolerance {tolerance:g}): "
                "onnxruntime does not compute what the reference does. Check that forward is "
                "deterministic in eval mode, try another --opset, or raise --tolerance if this "
                "difference is acceptable for the model"
            )
        worst[output] = max(worst[output], diff)

    expected = []
    for case in cases:
        single = run(case.feeds, f"{case.name} (batch 1)")
        want = reference(case.feeds) if reference is not None else single
        if len(want) != len(names):
            raise ParityRefused(
                f"the reference gives {len(want)} outputs, the graph {len(names)} ({names})"
            )
        for output, got, ref in zip(names, single, want, strict=True):
            compare(got, ref, output, f"{case.name} (batch 1)")
        expected.append(want)

    for rows in _batches(cases, padded=batch is not None):
        if batch is not None:
            feeds = batch([cases[r] for r in rows])
        else:
            feeds = {k: np.concatenate([cases[r].feeds[k] for r in rows]) for k in cases[0].feeds}
        for output, got in zip(names, run(feeds, f"a batch of {BATCH}"), strict=True):
            index = names.index(output)
            where = ", ".join(cases[r].name for r in rows)
            want_shape = (BATCH, *expected[rows[0]][index].shape[1:])
            _same_shape(got.shape, want_shape, output, f"a batch of {BATCH} ({where})")
            for position, r in enumerate(rows):
                compare(
                    got[position : position + 1],
                    expected[r][index],
                    output,
                    f"{cases[r].name} (row {position + 1} of a batch of {BATCH})",
                )
    summary = ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
    if reference is not None:
        how = f"against torch on {len(cases)} input(s) at batch 1 and in batches of {BATCH}"
    else:  # an ONNX file: its own answers at batch 1 are the reference for its batches
        how = f"on {len(cases)} input(s), batches of {BATCH} against batch 1 in onnxruntime"
    log(f"parity {how}: max |difference| {summary}")
    return worst


def _same_shape(got: tuple[int, ...], want: tuple[int, ...], output: str, where: str) -> None:
    if got != want:
        raise ParityRefused(
            f"output {output!r} on {where} has shape {list(got)}, expected {list(want)}: the "
            "graph does not keep the batch axis as the first axis of its outputs; re-export "
            "with the batch axis dynamic in every output"
        )


def _batches(cases: list[Case], padded: bool = False) -> list[list[int]]:
    """Rows of the batched runs: the cases taken in turn, BATCH at a time, where every case has
    the same shapes or the batches are padded; otherwise each case on its own, repeated BATCH
    times."""
    shapes = {tuple((k, v.shape) for k, v in c.feeds.items()) for c in cases}
    if len(shapes) > 1 and not padded:
        return [[i] * BATCH for i in range(len(cases))]
    order = [i % len(cases) for i in range(-(-len(cases) // BATCH) * BATCH)]
    return [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
