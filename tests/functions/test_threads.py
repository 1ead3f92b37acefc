"""The engine's threads follow the CPU the sandbox's memory size pays for (functions/threads.py)."""

from __future__ import annotations

import os

import onnxruntime as ort
import pytest

from functions.onnx_session import session_options
from functions.threads import MEMORY_VARIABLE, engine_threads


@pytest.mark.parametrize(
    ("memory", "cores", "threads"),
    [
        ("1024", 2, 1),  # 0.58 of a vCPU: one thread, whatever the sandbox sees
        ("128", 2, 1),  # never none
        ("1769", 2, 1),  # one vCPU
        ("3008", 2, 2),  # 1.7 vCPUs, two visible
        ("10240", 6, 6),  # 5.8 vCPUs
        ("10240", 2, 2),  # never more threads than visible cores
    ],
)
def test_one_thread_per_vcpu_the_memory_buys(
    memory: str, cores: int, threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert engine_threads({MEMORY_VARIABLE: memory}) == threads


@pytest.mark.parametrize("environ", [{}, {MEMORY_VARIABLE: ""}, {MEMORY_VARIABLE: "lots"}])
def test_outside_lambda_one_thread_per_visible_core(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert engine_threads(environ) == 4


def test_the_onnxruntime_session_runs_on_those_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setenv(MEMORY_VARIABLE, "1024")
    assert session_options(ort, optimize=True).intra_op_num_threads == 1
    monkeypatch.setenv(MEMORY_VARIABLE, "4096")
    assert session_options(ort, optimize=False).intra_op_num_threads == 2
