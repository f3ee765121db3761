"""``python -m realtime.bench.peers``: see realtime.bench.peers."""

import sys

from realtime.bench.peers.run import main

sys.exit(main())
