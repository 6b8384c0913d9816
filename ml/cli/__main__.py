"""`python -m ml.cli`: the console script without installing it."""

import sys

from ml.cli.main import main

sys.exit(main())
