"""``python -m adamask`` = the ``adamask`` command."""

import sys

from .cli import main

sys.exit(main())
