"""`modelfn drift`: captured requests against the reference statistics of the version that served
them. statistics.py holds the formulas (PSI, Kolmogorov-Smirnov), compare.py applies them to the
records, report.py is the report as data (drift.json) and as a page (drift.md), plots.py draws
it. The command is tools/cli/drift.py; docs/serving.md "Drift reports" says how to read it.
"""
