"""Property-based testing of the whole API from its own OpenAPI document (schemathesis).

schemathesis reads ``/openapi.json`` from a running server and sends up to
30 generated requests per operation (``MAX_EXAMPLES``), valid and invalid, then walks links
between operations (stateful phase). Every check runs (no 5xx, status codes,
content types, headers and bodies as documented, invalid input refused,
authentication enforced, ``Allow`` on 405) except
``positive_data_acceptance``: a schema-valid body can still be refused with
422 on purpose, because a scenario script must be a valid scenario, which no
JSON schema can say. The seed is fixed so a failure reproduces.

The server's scenarios have no ``api-initiated`` branch, and the Call Control
dial (``POST /telnyx/v2/calls``) is left out, so no generated request can make
it place a call anywhere (a generated SIP URI would send traffic off the
machine); every other operation is tested, and the test says how many.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import start_server

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent / "scenarios"
SEED = "20261122"
# Per operation. The API has grown to over a hundred operations; 30 keeps this
# test near a minute in the suite. A longer hunt: MEDIASERVER_SCHEMATHESIS_EXAMPLES=500.
MAX_EXAMPLES = os.environ.get("MEDIASERVER_SCHEMATHESIS_EXAMPLES", "30")


@pytest.mark.timeout(900)
def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server", routes={"echo": "echo"}, scenarios=SCENARIOS,
                          log_level="info")  # fmt: skip
    try:
        command = [
            str(Path(sys.executable).parent / "schemathesis"), "run",
            f"{server.api_url}/openapi.json",
            "--header", f"X-API-Key: {server.api_key}",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--workers", "1",
            "--request-timeout", "10",
            "--exclude-name", "POST /telnyx/v2/calls",
            "--report", "junit", "--report-dir", str(tmp_path / "report"),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=800, cwd=tmp_path)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-12000:]
        selected = re.search(r"Selected: (\d+)/(\d+)", output)
        tested = re.search(r"Tested: (\d+)", output)
        assert selected and tested, output[-3000:]
        # Every operation but the dial was tested.
        assert int(selected[1]) == int(tested[1]) == int(selected[2]) - 1, output[-3000:]
        assert '"http request failed"' not in server.log_text()
    finally:
        code = server.stop()
    assert code == 0, server.log_text()[-5000:]
