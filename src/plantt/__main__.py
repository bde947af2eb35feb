"""``python -m plantt``: the ``plantt`` command line."""

import sys

from plantt.cli import main

sys.exit(main())
