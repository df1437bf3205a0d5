"""SDP Security Descriptions for media streams (SDES, RFC 4568): the
``a=crypto`` lines that carry SRTP keys in the offer and the answer.

Pure: parsing an offer's crypto lines, choosing one, writing ours. The keys
themselves are used by :mod:`mediaserver.media.srtp`. Only what the media
layer can do is accepted: the suites below, an ``inline`` key without MKI
(RFC 4568 6.1: the MKI tells keys apart when several are used, which we never
do) and no session parameters (an unknown one must make the line unusable,
RFC 4568 6.3).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# RFC 4568 6.2 and RFC 7714 14.2: suite -> master key + salt length (bytes).
SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
    "AEAD_AES_128_GCM": 28,
}
PREFERENCE = tuple(SUITES)  # ours when we offer; an offer's own order wins when we answer

_LINE = re.compile(r"(\d{1,9}) ([A-Za-z0-9_]+) (\S+)(?: (.+))?")


@dataclass(frozen=True)
class CryptoLine:
    """One ``a=crypto:<tag> <suite> inline:<key||salt>[|lifetime]`` (RFC 4568 9.1)."""

    tag: int
    suite: str
    key: bytes

    def __str__(self) -> str:
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


@dataclass(frozen=True)
class SrtpKeys:
    """What both ends agreed: the suite, the key we send with and the one they send with."""

    suite: str
    local: bytes
    remote: bytes


def parse_crypto(value: str) -> CryptoLine | None:
    """One ``a=crypto`` value, or None when it cannot be used here (an unknown
    suite, several keys, an MKI, a session parameter, a malformed key)."""
    match = _LINE.fullmatch(value.strip())
    if match is None:
        return None
    tag, suite, keys, session_params = match.groups()
    length = SUITES.get(suite.upper())
    if length is None or session_params or ";" in keys:
        return None  # ";" joins several keys (RFC 4568 9.2)
    method, _, info = keys.partition(":")
    if method != "inline":
        return None
    key_text, *extra = info.split("|")
    # |lifetime is fine (we never send 2^48 packets); |MKI:length is not.
    if len(extra) > 1 or any(":" in part for part in extra):
        return None
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(key) != length:
        return None
    return CryptoLine(int(tag), suite.upper(), key)


def answer_crypto(
    offered: Sequence[str], new_key: Callable[[int], bytes], current: SrtpKeys | None = None
) -> tuple[CryptoLine, SrtpKeys] | None:
    """Our ``a=crypto`` for an offer's lines (the first usable one, RFC 4568
    7.1.1: same tag and suite, our own key) and the keys agreed; None when
    none is usable. A re-offer repeating the ``current`` remote key keeps our
    key too (RFC 4568 7.1.4: the keys change only when someone changes them)."""
    for value in offered:
        line = parse_crypto(value)
        if line is None:
            continue
        if current is not None and (current.suite, current.remote) == (line.suite, line.key):
            key = current.local
        else:
            key = new_key(SUITES[line.suite])
        ours = CryptoLine(line.tag, line.suite, key)
        return ours, SrtpKeys(line.suite, local=key, remote=line.key)
    return None


def offer_crypto(new_key: Callable[[int], bytes]) -> list[CryptoLine]:
    """Our lines when we offer SRTP: one per suite, in preference order."""
    return [
        CryptoLine(tag, suite, new_key(SUITES[suite])) for tag, suite in enumerate(PREFERENCE, 1)
    ]


def accept_crypto(ours: Sequence[CryptoLine], answered: Sequence[str]) -> SrtpKeys | None:
    """The keys of an answer to our offer: its one line must name one of our tags
    with the same suite (RFC 4568 7.1.2)."""
    for value in answered:
        line = parse_crypto(value)
        if line is None:
            continue
        for offered in ours:
            if offered.tag == line.tag and offered.suite == line.suite:
                return SrtpKeys(line.suite, local=offered.key, remote=line.key)
    return None
