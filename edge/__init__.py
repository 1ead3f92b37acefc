"""Edge bundles (issue 9): a published artifact as a self-contained, verified, quantized package.

`export.py` builds one (`modelfn export-edge`), `bundle.py` is its byte-level contract and
verification (`modelfn verify-bundle`), `publish.py` puts it in a store under `edge/`, and
`standalone_runner.py` is the `run.py` a device runs it with. docs/edge.md shows the path.
"""
