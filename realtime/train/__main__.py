"""``python -m realtime.train``: train PRNet (see realtime.train.train)."""

import sys

from realtime.train.train import main

sys.exit(main())
