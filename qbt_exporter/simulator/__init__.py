"""A simulated legacy qBittorrent 4.0.4 (WebUI API 17): a real HTTP server on a real socket.

Why it exists: no legacy qBittorrent can be installed in CI any more, yet the exporter's first target
is that API. The integration tests, the 10,000-torrent benchmarks and ``qbt-exporter --demo`` all need
a server that behaves like 4.0.4 *on the wire*, including its awkward parts. Everything here was taken
from ``qbittorrent-api.md`` (read from qBittorrent's sources) and from the recordings of a real 4.0.4
in ``tests/recordings/qbittorrent-4.0.4``.

The pieces, each with its own reason:

* ``world`` (with ``torrent``, ``states``, ``generate``): the torrents and their evolution over a
  scaled clock, from a seed; no HTTP;
* ``documents``: the JSON objects 4.0.4 builds from them, written the way Qt writes JSON;
* ``auth``: sessions, failed-login counting and the ban, on an injectable clock;
* ``webui``: checks, login and the routes the exporter calls, with the 1.5 s cache trap;
  ``v2``: the same world as a 4.6.7's ``/api/v2`` (``SimulatorConfig(api="v2")``, ``--demo``);
  ``extra_routes``: the few routes only the recordings' tests still ask for;
* ``server``: the socket server and 4.0.4's HTTP quirks, handed a request → response callable;
* ``failures``: the simulator's own fault switch (``fail_next``);
* ``app``: ``Simulator``, which wires them together behind one lock; ``cli``: its command line.

Run by hand: ``python -m qbt_exporter.simulator --torrents 1000 --port 8080 [--api v2]``.
"""

from qbt_exporter.simulator.app import Simulator
from qbt_exporter.simulator.cli import main
from qbt_exporter.simulator.config import SimulatorConfig
from qbt_exporter.simulator.states import STATES
from qbt_exporter.simulator.webui import BAN_TEXT

__all__ = ["BAN_TEXT", "STATES", "Simulator", "SimulatorConfig", "main"]
