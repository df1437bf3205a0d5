"""The Callr v1 CDR fields of real calls (seeds/000 CDR.In and CDR.Out).

A sipp caller who withholds their identity (``Privacy: id``) calls a UK
mobile number's worth of E.164 into a French number; the scenario sets
``$customer_field`` and dials a French mobile number played by a busy sipp.
The ``v2.call.*.ended`` webhooks must carry each record's Callr CDR with the
presentation, the countries and types read from the numbers, the customer
field (the dialled call inherits its dialler's), ``did_hash`` and the
``dialstatus`` in Callr's casing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediaserver.store.cdrs import did_hash
from tests.integration.conftest import start_server
from tests.integration.test_api_calls import Receiver, poll
from tests.support.sipp import SippBackground

pytestmark = pytest.mark.integration

SIPP_DIR = Path(__file__).parent / "sipp"
OUR_NUMBER = "+33612345678"
CALLED = "+33698765432"

SCENARIO = """\
branches:
  inbound-call:
    actions:
      - action: answer@v1
      - action: set@v1
        params:
          $customer_field: "'ACME' + 42"
      - action: dial@v1
        params:
          targets: ["{target}"]
          timeout: 10
      - action: hangup@v1
"""


async def test_cdrs_carry_presentation_numbers_and_customer_field(tmp_path: Path) -> None:
    with SippBackground(scenario=SIPP_DIR / "uas_busy.xml", service=CALLED,
                        workdir=tmp_path / "uas") as busy:  # fmt: skip
        scenarios = tmp_path / "scenarios"
        scenarios.mkdir()
        (scenarios / "cdr.yaml").write_text(SCENARIO.format(target=busy.uri))
        server = start_server(tmp_path / "server", routes={OUR_NUMBER: "cdr"}, scenarios=scenarios)
        try:
            headers = {"X-API-Key": server.api_key}
            async with (
                Receiver() as receiver,
                httpx.AsyncClient(base_url=server.api_url, headers=headers, timeout=15) as api,
            ):
                hook = await api.post(
                    "/api/webhooks", json={"endpoint": receiver.url, "events": ["v2.call.*"]}
                )
                assert hook.status_code == 201, hook.text
                async with SippBackground(server.target, scenario=SIPP_DIR /
                                          "uac_private_bye_from_server.xml", service=OUR_NUMBER,
                                          recv_timeout_ms=15000,
                                          workdir=tmp_path / "uac") as caller:  # fmt: skip
                    (await asyncio.to_thread(caller.wait, 30)).assert_ok(calls=1)

                async def ended() -> dict[str, dict[str, Any]] | None:
                    bodies = [json.loads(r.body) for r in receiver.requests]
                    done = {b["type"]: b["payload"] for b in bodies if b["type"].endswith("ended")}
                    return done if len(done) == 2 else None

                cdrs = await poll(ended)
                records = (await api.get("/api/cdrs")).json()["hits"]
        finally:
            server.stop()
    inbound, outbound = cdrs["v2.call.inbound.ended"], cdrs["v2.call.outbound.ended"]
    assert inbound["cli_number"] == "+447890123456"
    assert inbound["cli_name"] == "Anonymous"
    assert inbound["cli_pres"] == "prohib_passed_screen"
    assert inbound["cli_country_code"] == "GB"
    assert inbound["cli_number_type"] == "MOBILE"
    assert inbound["did_intl_number"] == OUR_NUMBER
    assert inbound["did_hash"] == did_hash(OUR_NUMBER)
    assert inbound["customer_field"] == "ACME42"
    assert outbound["number"] == CALLED
    assert outbound["number_country_code"] == "FR"
    assert outbound["number_type"] == "MOBILE"
    assert outbound["dialstatus"] == "BUSY"
    assert outbound["customer_field"] == "ACME42"  # the dialler's
    assert outbound["callid_in"] == inbound["callid"]
    # Our own INVITE does not hide the caller id.
    assert outbound["cli_pres"] == "allowed_passed_screen"
    native = {r["direction"]: r for r in records}
    assert native["inbound"]["cliPres"] == "prohib_passed_screen"
    assert native["inbound"]["customerField"] == "ACME42"
