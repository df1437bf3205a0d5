"""Session timers (RFC 4028): keeping a call's liveness checked.

A caller may ask (``Session-Expires``) that the session be refreshed by a
re-INVITE or UPDATE at least every so many seconds, and say who refreshes
(``refresher=uac`` or ``uas``). :func:`negotiate` applies the rules of RFC
4028 sections 8 and 9 to an incoming INVITE: too short an interval gets 422
with our ``Min-SE``; otherwise the result says the interval, who refreshes,
and the headers our 2xx must carry. The call then either sends refreshes at
half the interval (when it is the refresher) or ends the call with BYE when
no refresh arrived in time (RFC 4028 10).
"""

from __future__ import annotations

from dataclasses import dataclass

from mediaserver.sip.message import Request, Response, make_response
from mediaserver.sip.uri import SipSyntaxError, parse_params

MIN_SE = 90  # RFC 4028 4: never less than 90 seconds


@dataclass(frozen=True)
class SessionTimer:
    interval: int  # seconds
    we_refresh: bool  # True: refresher=uas (we send refreshes), False: the caller does

    def headers(self) -> list[tuple[str, str]]:
        """What our 2xx carries (RFC 4028 9): Session-Expires with the refresher,
        and Require: timer (the caller supports it, or we would refresh alone)."""
        refresher = "uas" if self.we_refresh else "uac"
        return [("Session-Expires", f"{self.interval};refresher={refresher}"), ("Require", "timer")]

    @property
    def refresh_after(self) -> float:
        """When the refresher refreshes: half the interval (RFC 4028 10)."""
        return self.interval / 2

    @property
    def expire_after(self) -> float:
        """When the other side gives up waiting (RFC 4028 10: interval minus the
        lesser of 32 seconds and a third of it)."""
        return self.interval - min(32, self.interval / 3)


def negotiate(request: Request, min_se: int = MIN_SE) -> SessionTimer | Response | None:
    """The session timer of an INVITE, a 422 refusing it, or None when the caller
    asked for none."""
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    seconds, _, rest = value.partition(";")
    if not seconds.strip().isdigit():
        return make_response(request, 400, "Bad Session-Expires")
    interval = int(seconds.strip())
    try:
        params = parse_params(rest)
    except SipSyntaxError:
        return make_response(request, 400, "Bad Session-Expires")
    if interval < min_se:
        # RFC 4028 8.1: too brief; tell the caller our minimum.
        return make_response(request, 422, "Session Interval Too Small",
                             extra=[("Min-SE", str(min_se))])  # fmt: skip
    supported = {tag.lower() for tag in request.headers.get_list("Supported", lenient=True)}
    supported |= {tag.lower() for tag in request.headers.get_list("Require")}
    refresher = (params.get("refresher") or "").lower()
    # RFC 4028 9: a caller without timer support cannot refresh: we do.
    we_refresh = refresher == "uas" or "timer" not in supported
    return SessionTimer(interval, we_refresh)
