"""The tracker-message classification, as a table: what real trackers and libtorrent send, and the
class each must get. Every phrase of MESSAGES appears at least once (checked), so a phrase cannot be
added without a real message that needs it."""

from __future__ import annotations

import pytest

from qbt_exporter.tracker_messages import CLASSES, MESSAGES, _normalised, classify, loggable

# (message as a tracker / qBittorrent reports it, class)
TABLE: tuple[tuple[str, str], ...] = (
    ("Unregistered torrent", "unregistered"),
    ("Unregistered torrent: Trumped", "unregistered"),
    ("unregistered torrent", "unregistered"),
    ("Torrent not registered with this tracker.", "unregistered"),
    ("torrent not registered with this tracker", "unregistered"),
    ("Torrent is not registered on this tracker", "unregistered"),
    ("info_hash not found", "unregistered"),
    ("Infohash not found.", "unregistered"),
    ("torrent not found", "unregistered"),
    ("Torrent does not exist", "unregistered"),
    ("unknown torrent", "unregistered"),
    ("Unknown info_hash", "unregistered"),
    ("info hash not authorized", "unregistered"),
    ("infohash not authorized for this tracker", "unregistered"),
    ("Requested download is not authorized for use with this tracker.", "unregistered"),
    ("Torrent has been deleted.", "unregistered"),
    ("Torrent has been removed", "unregistered"),
    ("torrent has been nuked", "unregistered"),
    ("Trumped", "unregistered"),
    ("Invalid passkey", "auth"),
    ("Passkey not found", "auth"),
    ("invalid authkey", "auth"),
    ("Invalid torrent_pass", "auth"),
    ("Your account is disabled", "auth"),
    ("You are not authorized to use this tracker", "auth"),
    ("Unauthorized", "auth"),
    ("Access denied", "auth"),
    ("HTTP 403 Forbidden", "auth"),
    ("Your client is banned", "auth"),
    ("Your client is not allowed on this tracker", "auth"),
    ("Client not whitelisted", "auth"),
    ("Login required", "auth"),
    ("Connection timed out", "unreachable"),
    ("timed out", "unreachable"),
    ("Connection refused", "unreachable"),
    ("Connection reset by peer", "unreachable"),
    ("Host not found (authoritative)", "unreachable"),
    ("Host not found (non-authoritative), try again later", "unreachable"),
    ("No route to host", "unreachable"),
    ("Network is unreachable", "unreachable"),
    ("Host is unreachable", "unreachable"),
    ("Name or service not known", "unreachable"),
    ("Temporary failure in name resolution", "unreachable"),
    ("No such host is known.", "unreachable"),
    ("502 Bad Gateway", "unreachable"),
    ("Service Unavailable", "unreachable"),
    ("504 Gateway Timeout", "unreachable"),
    ("Gateway Time-out", "unreachable"),
    # qBittorrent <= 4.0.4: the torrent's name and the announce URL come first, and say nothing.
    ('alpha.bin (http://127.0.0.1:6969/announce) (-1) Connection refused "" (2)', "unreachable"),
    ('Unregistered torrent.mkv (http://t.example/a?passkey=x) (-1) timed out "" (1)', "unreachable"),
    ('x (http://t.example/announce) (200) tracker error "Unregistered torrent" (3)', "unregistered"),
    # Anything else is other, an empty message included.
    ("", "other"),
    ("tracker sent an invalid response", "other"),
    ("Rate limited, retry in 30 minutes", "other"),
    ("Ïñvàlïd ♥", "other"),
)


@pytest.mark.parametrize(("message", "expected"), TABLE)
def test_classification_table(message: str, expected: str) -> None:
    assert classify(message) == expected


def test_every_phrase_is_in_the_table_and_classes_are_the_fixed_set() -> None:
    covered = {phrase for _, phrase in MESSAGES if any(phrase in _normalised(m) for m, _ in TABLE)}
    assert covered == {phrase for _, phrase in MESSAGES}
    assert {cls for cls, _ in MESSAGES} | {"other"} == set(CLASSES)


def test_a_logged_message_keeps_no_url_and_nothing_like_a_key() -> None:
    message = (
        "beta (https://t.example/a1b2c3d4e5f60718293a4b5c6d7e8f90/announce?passkey=s3cret) (-1) "
        'Invalid passkey "passkey=s3cret authkey: 0123456789abcdef0123" (1)\n'
    )
    text = loggable(message)
    assert "s3cret" not in text and "a1b2c3" not in text and "0123456789abcdef" not in text
    assert "t.example" not in text and "\n" not in text and "Invalid passkey" in text
    assert len(loggable("x" * 5000)) <= 200
