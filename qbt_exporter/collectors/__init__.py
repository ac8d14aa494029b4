"""One collector per concept, each turning a ``ScrapeResult`` into its own metric families.

``base.py`` says what a collector is and holds the error boundary; ``transfer.py``, ``torrents.py``,
``properties.py`` and ``exporter.py`` are the collectors; ``process.py`` the process metrics;
``registry.py`` the list of collectors, their switches, and ``Collectors``, which runs them.
To add a collector: write it (declare its catalogue families), add an ``Entry`` to the registry.
"""

from qbt_exporter.collectors.registry import Collectors

__all__ = ["Collectors"]
