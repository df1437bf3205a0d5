"""What an SMS is allowed to be, how it is counted, and what a SIP answer means.

Pure functions: the API checks a send request with :func:`check_outbound`,
the service counts it with :func:`encoding_of` and :func:`parts_of`, and
turns the final SIP answer to its MESSAGE into the seed's status with
:func:`status_of_answer`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

SmsStatus = Literal[
    "created", "error", "expired", "failed", "pending", "delivered", "remote-queued", "sent"
]
Encoding = Literal["gsm", "unicode"]
TrafficType = Literal["marketing", "alerting"]

STATUSES: tuple[SmsStatus, ...] = (
    "created", "error", "expired", "failed", "pending", "delivered", "remote-queued", "sent"
)  # fmt: skip
FINAL: frozenset[SmsStatus] = frozenset(("error", "expired", "failed", "delivered"))
"""Statuses an SMS does not leave (``remote-queued`` waits for a delivery report
that SIP MESSAGE never brings, so it stays too)."""

MAX_TEXT = 3200  # the seed's text: string [1 .. 3200] characters
E164 = re.compile(r"\+[1-9][0-9]{5,32}")  # the seed's PhoneNumber
ALPHANUMERIC_SENDER = re.compile(r"[A-Za-z0-9._-]{1,11}")  # the seed: 1 to 11 characters
DEFAULT_SENDER = "SMS"  # the seed's own example of a sender

# GSM 03.38 (3GPP TS 23.038 6.2.1): the default alphabet, one septet each...
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# ...and its extension table, two septets each (escape + character).
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

# One part holds 160 GSM septets or 70 UTF-16 units; a long message is split into
# parts of 153 or 67, each losing room to its concatenation header (3GPP TS 23.040 9.2.3.24.1).
_SINGLE = {"gsm": 160, "unicode": 70}
_CONCATENATED = {"gsm": 153, "unicode": 67}


class SmsInputError(ValueError):
    """A send request the API refuses; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def is_gsm(text: str) -> bool:
    return all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text)


def encoding_of(text: str) -> Encoding:
    """The encoding detected from the characters used, as the seed does by default."""
    return "gsm" if is_gsm(text) else "unicode"


def units(text: str, encoding: Encoding) -> int:
    """GSM septets or UTF-16 code units ``text`` takes."""
    if encoding == "gsm":
        return sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def parts_of(text: str, encoding: Encoding) -> int:
    """How many SMS parts ``text`` would be split into on a mobile network."""
    count = units(text, encoding)
    if count <= _SINGLE[encoding]:
        return 1
    return math.ceil(count / _CONCATENATED[encoding])


@dataclass(frozen=True)
class OutboundSms:
    """A checked send request."""

    to: str
    sender: str
    text: str
    encoding: Encoding
    parts: int
    traffic_type: TrafficType


def check_outbound(
    to: str | None,
    sender: str | None,
    text: str | None,
    encoding: Encoding | None = None,
    traffic_type: TrafficType = "marketing",
) -> OutboundSms:
    """The send request checked against the seed's rules; SmsInputError naming the field."""
    if to is None or to == "":
        raise SmsInputError("to", "to: the recipient is required, in E.164 (+33639984242)")
    if not E164.fullmatch(to):
        raise SmsInputError(
            "to", f"to: {to!r} is not an E.164 number; write it with + and the country code"
        )
    if sender is None or sender == "":
        sender = DEFAULT_SENDER
    elif not (E164.fullmatch(sender) or ALPHANUMERIC_SENDER.fullmatch(sender)):
        raise SmsInputError(
            "from",
            f"from: {sender!r} is neither an E.164 number nor an alphanumeric sender "
            "(1 to 11 letters, digits, '.', '_' or '-')",
        )
    if text is None or text == "":
        raise SmsInputError("text", "text: the message text is required (1 to 3200 characters)")
    if len(text) > MAX_TEXT:
        raise SmsInputError(
            "text", f"text: {len(text)} characters, over the limit of {MAX_TEXT}; shorten it"
        )
    if encoding == "gsm" and not is_gsm(text):
        odd = next(ch for ch in text if ch not in _GSM_BASIC and ch not in _GSM_EXTENDED)
        raise SmsInputError(
            "encoding",
            f"encoding: {odd!r} is not in the GSM 03.38 alphabet; use unicode or omit encoding",
        )
    chosen: Encoding = encoding or encoding_of(text)
    return OutboundSms(to, sender, text, chosen, parts_of(text, chosen), traffic_type)


@dataclass(frozen=True)
class Outcome:
    """What became of a MESSAGE: the seed's status, and why when it is not delivered."""

    status: SmsStatus
    error: str | None


def status_of_answer(sip_status: int | None) -> Outcome:
    """The seed's status for the final answer to our MESSAGE (None: no answer).

    RFC 3428 7: a 200 says the recipient's user agent took the message
    (``delivered``); a 202 says a store-and-forward server accepted it for later
    delivery (``remote-queued``, no delivery report follows in SIP). Every
    refusal is ``failed`` (the seed's "rejected by the carrier"); no answer
    before the transaction timed out (RFC 3261 17.1.2.2, Timer F) or a 408 is
    ``expired`` (the seed's "was not delivered to the recipient").
    """
    if sip_status is None:
        return Outcome("expired", "no answer to the SIP MESSAGE (transaction timed out)")
    if sip_status == 202:
        return Outcome("remote-queued", None)
    if 200 <= sip_status < 300:
        return Outcome("delivered", None)
    if sip_status == 408:
        return Outcome("expired", "SIP 408: the recipient did not answer in time")
    return Outcome("failed", f"SIP {sip_status}: the recipient refused the message")


def unreachable(reason: str) -> Outcome:
    """The MESSAGE could not be sent at all (no such user, no trunk): ``error``,
    the seed's "was not accepted"."""
    return Outcome("error", reason)
