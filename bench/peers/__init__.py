"""The servers modelfn is measured against, each reading the same published artifact."""
