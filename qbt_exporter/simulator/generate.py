"""New simulated torrents, drawn from the world's random generator: names, sizes, trackers, history.

Why apart from the world: what a torrent *looks like* when it appears (realistic names, a few that
exercise label escaping, passkeys in tracker URLs, a long-running seedbox's history for the initial
set) is a separate concern from how torrents evolve afterwards. The order of the random draws is
part of the contract: one seed must give the same torrents on every run.
"""

from __future__ import annotations

import math
import random
import re
import urllib.parse

from qbt_exporter.simulator.states import COMPLETE, INITIAL_WEIGHTS
from qbt_exporter.simulator.torrent import Torrent

__all__ = ["CATEGORIES", "new_torrent", "random_size"]

CATEGORIES = ("", "", "", "linux", "movies", "tv", "music", "books")
_TAGS = ("", "", "", "", "a, b", "hd", "private, seed")
_WORDS_A = (
    "Ubuntu",
    "Debian",
    "Fedora",
    "Big Buck Bunny",
    "Sintel",
    "Tears of Steel",
    "Elephants Dream",
    "Cosmos Laundromat",
    "Arch Linux",
    "Wikipedia dump",
    "OpenStreetMap planet",
    "Internet Archive",
    "Blender demo",
    "LibreOffice",
    "Public Domain Audiobook",
)
_WORDS_B = ("2019", "2020", "2021", "2022", "2023", "24.04", "12.5", "Season 1", "Vol. 3", "Remastered")
_WORDS_C = ("1080p", "720p", "2160p HDR", "amd64", "arm64", "FLAC", "x265", "netinst", "DVD", "EPUB")
_EXTS = (".iso", ".mkv", ".tar.gz", "", "", ".zip", ".mp4", ".flac")
# Names that exercise label escaping in the exporter (quotes, backslashes, newlines, Unicode).
_ODD_NAMES = (
    'The "Quoted" Collection',
    "C:\\Users\\share\\backup\\disk.img",
    "First line\nSecond line.mkv",
    "Café Müller – Ünïcødé 日本語 🎬.mkv",
    "Tab\tand \\n literal and 'single' quotes",
    'Mixed \\"escapes\\" {braces} = 100%',
    "Ελληνικά και Кириллица",
    "emoji only 🍿🎞️",
)
_TRACKER_TEMPLATES = (
    "http://tracker.example.org:6969/{key}/announce",
    "https://tracker.example.net/announce.php?passkey={key}",
    "udp://open.tracker.example.com:1337/announce",
    "http://bt.example.com:2710/{key}/announce",
)


def random_size(rng: random.Random) -> int:
    """Log-uniform between 1 MB and 50 GB, like a real library."""
    return int(math.exp(rng.uniform(math.log(1e6), math.log(5e10))))


def new_torrent(
    rng: random.Random, number: int, now: float, taken: dict[str, Torrent], initial: bool
) -> tuple[Torrent, str]:
    """The ``number``-th torrent of this world and the state it starts in (the caller applies it).

    ``initial`` torrents were there when the server started and carry a history (age, totals,
    completion); later ones were just added and are downloading or fetching metadata."""
    t = Torrent()
    t.hash = f"{rng.getrandbits(160):040x}"
    while t.hash in taken:
        t.hash = f"{rng.getrandbits(160):040x}"
    if number % 9 == 4:
        t.name = _ODD_NAMES[(number // 9) % len(_ODD_NAMES)]
    else:
        t.name = " ".join((rng.choice(_WORDS_A), rng.choice(_WORDS_B), rng.choice(_WORDS_C)))
        t.name = t.name.replace(" ", rng.choice((" ", ".", "_"))) + rng.choice(_EXTS)
    t.category = rng.choice(CATEGORIES)
    t.tags = rng.choice(_TAGS)
    t.save_path = f"/downloads/{t.category or 'data'}/"
    t.comment = rng.choice(("", "", "Downloaded from example.org", 'said "thanks"'))
    t.created_by = rng.choice(("mktorrent 1.1", "qBittorrent v4.0.4", "Transmission/2.94", ""))
    t.piece_size = rng.choice((32768, 262144, 1048576, 4194304))
    if rng.random() < 0.002:
        t.total_size = rng.randrange(10_000, 100_000)  # small, popular: ratio hits the 9999 cap
    else:
        t.total_size = random_size(rng)
    t.size = t.total_size if rng.random() < 0.9 else int(t.total_size * rng.uniform(0.3, 0.9))
    _give_trackers(t, rng)
    t.dl_limit = rng.choice((-1, -1, -1, 0, 1048576))
    t.up_limit = rng.choice((-1, -1, -1, 0, 102400))
    t.ratio_limit = rng.choice((-1, -1, -1, -1, 2))
    t.seq_dl = rng.random() < 0.05
    t.auto_tmm = rng.random() < 0.2
    t.num_complete = rng.randrange(0, 200)
    t.num_incomplete = rng.randrange(0, 50)
    t.reannounce_at = now + rng.uniform(0, 1800)
    if initial:
        state = rng.choices(list(INITIAL_WEIGHTS), weights=list(INITIAL_WEIGHTS.values()))[0]
        _give_history(t, rng, now, state)
    else:
        state = rng.choice(("downloading", "metaDL", "queuedDL", "checkingResumeData", "stalledDL"))
        t.added_on = int(now)
        t.creation_date = int(now - rng.uniform(0, 86400 * 30))
    return t, state


def _give_trackers(t: Torrent, rng: random.Random) -> None:
    """Zero, one or two trackers sharing one passkey, and the magnet link that lists them."""
    key = f"{rng.getrandbits(128):032x}"
    roll = rng.random()
    if roll < 0.05:
        t.trackers = []
    else:
        first = rng.choice(_TRACKER_TEMPLATES).format(key=key)
        t.trackers = [first]
        if roll > 0.8:
            t.trackers.append(rng.choice(_TRACKER_TEMPLATES).format(key=key))
    t.tracker_ok = rng.random() > 0.05
    t.magnet_uri = f"magnet:?xt=urn:btih:{t.hash}&dn={_escape_magnet(t.name)}" + "".join(
        f"&tr={_escape_magnet(url)}" for url in t.trackers
    )


def _give_history(t: Torrent, rng: random.Random, now: float, state: str) -> None:
    """Age, totals and completion of a torrent that has been on the server for a while."""
    age = rng.uniform(600, 2 * 365 * 86400)
    t.added_on = int(now - age)
    t.creation_date = int(t.added_on - rng.uniform(0, 86400 * 30))
    t.time_active_base = age * rng.uniform(0.05, 0.95)
    if state in COMPLETE:
        t.completed = t.size
        t.completion_on = int(t.added_on + rng.uniform(60, age / 2))
        t.downloaded = 0 if rng.random() < 0.3 else int(t.size * rng.uniform(1.0, 1.05))
        t.seeding_base = max(0.0, t.time_active_base - (t.completion_on - t.added_on) / 4)
        t.uploaded = int(t.size * rng.lognormvariate(0.0, 1.2))
        if t.total_size < 100_000:
            t.uploaded = t.total_size * rng.randrange(20_000, 50_000)
        t.last_transfer = now - rng.uniform(0, age) if rng.random() < 0.9 else None
    else:
        t.completed = int(t.size * rng.uniform(0.0, 0.98)) if state != "metaDL" else 0
        t.downloaded = int(t.completed * rng.uniform(1.0, 1.02))
        t.uploaded = int(t.downloaded * rng.uniform(0.0, 0.5))
        t.last_transfer = now - rng.uniform(0, age) if t.downloaded else None
    t.wasted = int(t.downloaded * rng.uniform(0, 0.002))


def _escape_magnet(value: str) -> str:
    """libtorrent's ``escape_string``: percent-encode with lower-case hex, as in the recordings."""
    quoted = urllib.parse.quote(value, safe="-_!.~*()")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted)
