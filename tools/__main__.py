"""`python -m modelfn ...` runs the `modelfn` command (torchrun starts its ranks this way)."""

import sys

from modelfn.cli import main

sys.exit(main())
