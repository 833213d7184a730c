"""`python -m frlib` runs the command line."""

import sys

from frlib.cli import main

sys.exit(main())
