"""How many threads an engine runs a request on: the CPU the sandbox's memory size pays for.

Lambda gives CPU in proportion to memory, one vCPU-second per second at 1,769 MB (AWS's Lambda
guide, "Configuring function memory"), while `os.cpu_count()` counts the cores the sandbox can
see: 2 at every size from 128 to 3,008 MB (rwnx/lambda-cpuinfo measured it). A 1,024 MB function
therefore owns 0.58 of a vCPU whatever it sees, and a second intra-op thread only competes with
the first for it, and has to be woken for every run (docs/serving.md has the measured cost).
A sandbox serves one request at a time, so the threads are the request's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

MB_PER_VCPU = 1769  # Lambda: memory size that buys one vCPU-second per second
MEMORY_VARIABLE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"  # set by Lambda in every sandbox


def engine_threads(environ: Mapping[str, str] | None = None) -> int:
    """One thread per vCPU the memory size buys (rounded, at least one), never more than the
    cores visible; outside Lambda (no memory size in `environ`), one per visible core."""
    env = os.environ if environ is None else environ
    cores = os.cpu_count() or 1
    memory = env.get(MEMORY_VARIABLE, "")
    if not memory.isdigit():
        return cores
    return max(1, min(cores, round(int(memory) / MB_PER_VCPU)))
