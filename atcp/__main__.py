"""``python -m atcp``: the same as the ``atcp`` command."""

import sys

from .cli import main

sys.exit(main())
