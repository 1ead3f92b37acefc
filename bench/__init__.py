"""`make bench`: modelfn against the handler people deploy today, on the same artifacts, in one run.

bench/run.py orchestrates; bench/probe.py is the process whose cold start and warm latency are
measured; bench/peers/ holds the other servers; stats.py and cost.py hold the arithmetic.
"""
