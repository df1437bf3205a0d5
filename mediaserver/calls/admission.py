"""Whether an initial INVITE may become a call: a pure decision.

:func:`admit_invite` reads the request, what the access policy said of its
sender and the server's state (rate, draining, routes) and returns one
decision: :class:`Admit` (set the call up for this scenario), :class:`Challenge`
(a 407: one step of a normal authenticated call) or :class:`Refuse` (the status,
its reason and why, for the operator). It sends nothing and keeps nothing: the
call switch acts on the decision. The checks follow RFC 3261 8.2 in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mediaserver.sip.access import Admission, Decision
from mediaserver.sip.dialog import dialog_problem
from mediaserver.sip.message import Request, Response
from mediaserver.sip.sdp import SdpError, SessionDescription
from mediaserver.sip.session_timer import SessionTimer
from mediaserver.sip.session_timer import negotiate as negotiate_session_timer

Router = Callable[[str], str | None]
"""Called user or number -> scenario name, None when nothing matches."""


@dataclass(frozen=True)
class Admit:
    """Set the call up: it runs ``scenario``."""

    scenario: str
    admission: Admission
    offer: SessionDescription | None  # None: the INVITE had no SDP
    session_timer: SessionTimer | None


@dataclass(frozen=True)
class Challenge:
    """Answer with this 407: a step of a normal call, neither counted nor recorded."""

    response: Response


@dataclass(frozen=True)
class Refuse:
    """Refuse the call with ``status``; ``why`` names the cause in logs and metrics."""

    status: int
    why: str
    reason: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    record: bool = True  # a call record too (not for strangers: they could fill the table)
    scenario: str | None = None
    response: Response | None = None  # built already (digest refusals, 422 with Min-SE)


InviteDecision = Admit | Challenge | Refuse


def admit_invite(
    request: Request,
    access: Decision,
    *,
    user_retry_after: int | None,
    draining: bool,
    route: Router,
) -> InviteDecision:
    """Decide on an initial INVITE. ``access`` is the access policy's answer for its
    sender; ``user_retry_after``, the seconds to wait when the admitted digest user is
    over their rate (None when not); ``draining``, whether the server is shutting down;
    ``route``, the scenario of a called number."""
    if isinstance(access, Response):
        if access.status == 407:
            return Challenge(access)
        why = "forbidden" if access.status == 403 else "bad_credentials"
        return Refuse(access.status, why, access.reason, record=False, response=access)
    if user_retry_after is not None:
        retry = (("Retry-After", str(user_retry_after)),)
        return Refuse(503, "rate_limited", "Too many requests", retry, record=False)
    if draining:
        return Refuse(503, "shutting_down", "Shutting down", (("Retry-After", "60"),))
    problem = dialog_problem(request)
    if problem is not None:
        return Refuse(400, "bad_request", problem)
    timer = negotiate_session_timer(request)
    if isinstance(timer, Response):
        why = "session_interval_too_small" if timer.status == 422 else "bad_request"
        return Refuse(timer.status, why, timer.reason, response=timer)
    if request.body and request.content_type != "application/sdp":
        # RFC 3261 8.2.3: say what we accept.
        return Refuse(415, "unsupported_media", extra=(("Accept", "application/sdp"),))
    if "Accept" in request.headers and not accepts_sdp(request):
        # RFC 3261 21.4.7: our answer is SDP, which the caller says it cannot take.
        return Refuse(406, "unsupported_media", "Not Acceptable (answers are application/sdp)")
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if request.body and encoding != "identity":
        return Refuse(415, "unsupported_media", extra=(("Accept-Encoding", "identity"),))
    called = request.request_uri.user_unescaped or request.to.uri.user_unescaped or ""
    scenario = route(called)
    if scenario is None:
        return Refuse(404, "no_route", f"No route for {called[:40]}" if called else None)
    offer: SessionDescription | None = None
    if request.body:
        try:
            offer = SessionDescription.parse(request.body)
        except SdpError as exc:
            return Refuse(400, "bad_request", f"Bad SDP: {exc}"[:120], scenario=scenario)
    return Admit(scenario, access, offer, timer)


def accepts_sdp(request: Request) -> bool:
    """Whether the Accept header allows an SDP body (an empty one allows none)."""
    values = request.headers.get_list("Accept", lenient=True)
    if not values and (request.headers.get("Accept") or "").strip():
        return True  # malformed: ignored, as if absent
    wanted = {value.split(";")[0].strip().lower() for value in values}
    return bool(wanted & {"application/sdp", "application/*", "*/*"})
