"""Bounded fuzzing of a started server: API bodies (api.py) and SIP over UDP (sip_server.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.api import api_target
from tests.fuzz.sip_server import sip_server_target, start_sip_server
from tests.fuzz.targets import Target
from tests.integration.conftest import start_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = start_server(Path(tmp_path_factory.mktemp("fuzz-api")), log_level="info")
    try:
        yield api_target(server)
    finally:
        assert server.stop() == 0, server.log_text()[-5000:]


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_api_bodies_never_give_a_server_error(target: Target, data: st.DataObject) -> None:
    target.check(data.draw(target.inputs, label="request"))


@pytest.fixture(scope="module")
def sip_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = start_sip_server(Path(tmp_path_factory.mktemp("fuzz-sip")))
    try:
        yield sip_server_target(server)
    finally:
        assert server.stop() == 0, server.log_text()[-5000:]


@settings(
    max_examples=int(os.environ.get("FUZZ_SERVER_EXAMPLES", "60")),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_sip_messages_never_give_a_server_error(sip_target: Target, data: st.DataObject) -> None:
    sip_target.check(data.draw(sip_target.inputs, label="datagram"))
