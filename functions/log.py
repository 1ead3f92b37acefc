"""The functions' one structured logger (Powertools: JSON lines that CloudWatch can query)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

# POWERTOOLS_SERVICE_NAME (set per model by the deployment) wins over this default. Powertools
# names its logging.Logger after the service and gives it a handler, so the default must not be
# "modelfn": that would capture every "modelfn.*" logger of a process that imports this module.
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "modelfn-function")
