"""`python -m tools ...` runs the `modelfn` command (torchrun starts its ranks this way)."""

import sys

from tools.cli import main

sys.exit(main())
