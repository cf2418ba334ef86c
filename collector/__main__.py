"""`python -m collector` == `bess-collector`."""

import sys

from collector.cli import main

sys.exit(main())
