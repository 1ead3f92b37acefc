"""What a million predictions cost on AWS Lambda, from a measured warm duration.

Prices: AWS Lambda on-demand, US East (N. Virginia), first pricing tier, as listed in stored
copies of public pages read on READ_ON (aws.amazon.com/lambda/pricing itself cannot be reached
from the build machine): $0.20 per million requests; $0.0000166667 per GB-second on x86_64 and
$0.0000133334 on arm64. Lambda bills duration in 1 ms steps, rounded up. Free tier ignored.
"""

from __future__ import annotations

import math

READ_ON = "2026-11-29"
SOURCE = "AWS Lambda pricing, us-east-1, tier 1 (stored copies of public pages; see bench/cost.py)"
REQUEST_USD = 0.20 / 1_000_000
GB_SECOND_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}


def cost_per_million(duration_ms: float, memory_mb: int, architecture: str) -> float:
    """USD for 1,000,000 invocations of `duration_ms` each at `memory_mb` of configured memory."""
    if duration_ms < 0 or memory_mb <= 0:
        raise ValueError(f"duration {duration_ms} ms and memory {memory_mb} MB must be positive")
    billed_s = math.ceil(duration_ms) / 1000
    per_call = REQUEST_USD + GB_SECOND_USD[architecture] * (memory_mb / 1024) * billed_s
    return per_call * 1_000_000
