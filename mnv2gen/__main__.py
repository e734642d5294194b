"""`python -m mnv2gen` runs the command line."""

import sys

from mnv2gen.cli import main

sys.exit(main())
