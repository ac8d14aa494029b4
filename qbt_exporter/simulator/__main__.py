"""``python -m qbt_exporter.simulator [--torrents N] [--port P] ...``: see ``cli``."""

from qbt_exporter.simulator.cli import main

raise SystemExit(main())
