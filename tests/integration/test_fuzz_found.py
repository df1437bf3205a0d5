"""What fuzzing the SIP endpoint of a running server found (scripts/fuzz, target sip-server).

Each input here once made the server log an internal error and answer 500;
it now gets the 400 its malformed header deserves, naming the header.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import ServerProcess, start_server
from tests.support.rawsip import SipProbe, sdp_offer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("fuzzfound"), routes={"echo": "echo"})
    yield proc
    assert proc.stop() == 0, proc.log_text()[-5000:]


@pytest.mark.parametrize(
    ("method", "header"),
    [("REFER", "Require"), ("INVITE", "Require"), ("INVITE", "Record-Route"),
     ("OPTIONS", "Require")],
)  # fmt: skip
def test_an_unterminated_quote_in_a_list_header_is_a_400(
    server: ServerProcess, method: str, header: str
) -> None:
    with SipProbe(server.sip_port) as probe:
        probe.send(probe.build(method, headers=[f'{header}: timer, "Name \\" q']))
        reply = probe.expect_final()
    assert reply.status == 400, reply.status
    assert f"Bad {header} header" in reply.reason
    errors = [r for r in server.log_records() if r.get("level") == "error"]
    assert errors == []


@pytest.mark.parametrize("header", ["Contact", "Record-Route"])
def test_an_invite_whose_contact_is_not_an_address_is_a_400(
    server: ServerProcess, header: str
) -> None:
    """The dialog read them only while setting up the call: an error, and no answer."""
    with SipProbe(server.sip_port) as probe:
        request = probe.build("INVITE", body=sdp_offer(), headers=[f"{header}: \x00sip:x@h>"])
        if header == "Contact":  # replace the probe's own Contact
            request = request.replace(f"Contact: <sip:probe@127.0.0.1:{probe.port}>\r\n", "", 1)
        probe.send(request)
        reply = probe.expect_final()
    assert reply.status == 400, reply.status
    assert f"Bad {header} header" in reply.reason
    errors = [r for r in server.log_records() if r.get("level") == "error"]
    assert errors == []
