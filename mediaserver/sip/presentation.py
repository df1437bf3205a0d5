"""Caller presentation: whether the caller asked to hide their identity.

Callr v1 CDRs carry ``cli_pres``, ``allowed_passed_screen`` or
``prohib_passed_screen`` (ISDN presentation indicator plus screening,
Q.931 4.5.10). A SIP INVITE tells the same with the headers below; the
identity is counted as screened (``passed_screen``) because the server has
no network screening of its own to report, and the seed has no other value.

Presentation is prohibited when any of these holds:

- ``Privacy`` lists ``id`` (RFC 3325 9.3), ``user`` or ``header`` (RFC 3323
  4.2): the caller asked for their identity to be withheld;
- the From URI is the anonymous one of RFC 3261 8.1.1.3
  (``sip:anonymous@anonymous.invalid``) or its user is ``anonymous``;
- the From display name is ``Anonymous`` (RFC 3261 8.1.1.3's example) and no
  ``P-Asserted-Identity`` says who calls.

Otherwise it is allowed. ``Privacy: none`` and ``critical`` alone change nothing.
"""

from __future__ import annotations

from typing import Literal

from mediaserver.sip.message import Request

Presentation = Literal["allowed_passed_screen", "prohib_passed_screen"]

ALLOWED: Presentation = "allowed_passed_screen"
PROHIBITED: Presentation = "prohib_passed_screen"

# RFC 3323 4.2 and RFC 3325 9.3: the privacy values that withhold the caller's identity.
_HIDING = frozenset(("id", "user", "header"))


def cli_presentation(invite: Request) -> Presentation:
    """The ``cli_pres`` of a call set up by ``invite`` (mapping in the module doc)."""
    privacy = {
        value.strip().lower()
        for line in invite.headers.get_all("Privacy")
        for value in line.split(";")  # RFC 3323 4.2: priv-values are separated by ";"
    }
    if privacy & _HIDING:
        return PROHIBITED
    sender = invite.from_
    user = (getattr(sender.uri, "user", None) or "").lower()
    host = (getattr(sender.uri, "host", None) or "").lower()
    if user == "anonymous" or host == "anonymous.invalid":
        return PROHIBITED
    asserted = invite.headers.get("P-Asserted-Identity")
    if asserted is None and (sender.display_name or "").strip().lower() == "anonymous":
        return PROHIBITED
    return ALLOWED
