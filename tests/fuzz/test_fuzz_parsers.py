"""Bounded fuzzing of every parser that reads what a peer or a user sends (tests/fuzz/targets.py).

Derandomised and without an example database, so the suite is reproducible;
``FUZZ_EXAMPLES`` raises the count, and ``scripts/fuzz --minutes N`` runs the
same targets for minutes with fresh randomness.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS

SUITE = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "300")),
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("name", sorted(TARGETS))
@SUITE
@given(data=st.data())
def test_parser_refuses_hostile_input_only_with_its_own_error(
    name: str, data: st.DataObject
) -> None:
    target = TARGETS[name]
    target.check(data.draw(target.inputs, label=name))
