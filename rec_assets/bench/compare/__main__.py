"""``python -m rec_assets.bench.compare``: see :mod:`rec_assets.bench.compare.cli`."""

import sys

from rec_assets.bench.compare.cli import main

sys.exit(main())
