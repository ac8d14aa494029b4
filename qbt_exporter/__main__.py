"""``python -m qbt_exporter`` runs the exporter, like the ``qbt-exporter`` command."""

from qbt_exporter.cli import main

raise SystemExit(main())
