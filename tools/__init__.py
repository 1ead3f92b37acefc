"""The top floor: what a person runs. The `modelfn` command (cli/), the local deployment (local/:
moto S3 server, a process per function, the HTTP gateway, local auth, the playground index), the
demo, `evaluate` and `promote`. Everything here may import every floor below it; nothing below
imports this package (`make lint` checks it, .importlinter).
"""
