"""``python -m benchmarks``: run every benchmark and write docs/performance.md."""

import sys

from .run import main

sys.exit(main())
