"""What `mediaserver run` says when it cannot listen: the address, the cause, the fix."""

from __future__ import annotations

import errno

import pytest

from mediaserver.config import ListenAddress
from mediaserver.server import listen_problem
from mediaserver.sip.transport import ListenError

ADDRESS = "udp:0.0.0.0:5060"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (errno.EADDRINUSE, "SIP port udp:0.0.0.0:5060 is in use (another server running?);"
                           " choose another with --sip-port N"),
        (errno.EACCES, "SIP port udp:0.0.0.0:5060 needs privileges (a port below 1024);"
                       " choose another with --sip-port N"),
        (errno.EADDRNOTAVAIL, "SIP address udp:0.0.0.0:5060 is not one of this machine's;"
                              " change sip.listen"),
        (errno.EINVAL, "cannot listen for SIP on udp:0.0.0.0:5060: boom; check sip.listen"),
    ],
)  # fmt: skip
def test_each_cause_has_its_message(code: int, expected: str) -> None:
    exc = OSError(code, "boom")
    assert listen_problem("SIP", ADDRESS, "--sip-port", "sip.listen", exc) == expected


def test_the_socket_error_under_uvloop_wrapping_is_the_cause() -> None:
    # uvloop raises OSError("could not bind to local_addr ...") from the socket's error.
    try:
        try:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        except OSError as inner:
            raise OSError("could not bind to local_addr ('0.0.0.0', 5060)") from inner
    except OSError as wrapped:
        error = ListenError(ListenAddress("udp", "0.0.0.0", 5060), wrapped)
    assert error.errno == errno.EADDRINUSE
    assert str(error.address) == ADDRESS
