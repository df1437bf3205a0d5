"""Each hang-up cause the server sets has its own Q.850 number (RFC 3398, RFC 3326)."""

from __future__ import annotations

from mediaserver.actions.builtin.call import REJECT_REASONS
from mediaserver.calls.causes import Q850_CAUSES, q850_cause
from mediaserver.calls.inbound import UNANSWERED_STATUS


def test_each_cause_the_server_sets_has_its_q850_number() -> None:
    assert q850_cause("normal_clearing") == 16
    assert q850_cause("busy") == 17
    assert q850_cause("no_answer") == 19
    assert q850_cause("unavailable") == 20
    assert q850_cause("declined") == 21
    assert q850_cause("rejected") == 21
    assert q850_cause("not_found") == 1
    assert q850_cause("failed") == 41
    assert q850_cause("session_expired") == 102
    assert q850_cause("originator_cancel") == 487


def test_every_reject_and_unanswered_reason_is_mapped() -> None:
    # A reason added to reject@v1 or to the unanswered statuses needs its own cause.
    assert set(REJECT_REASONS) <= set(Q850_CAUSES)
    assert set(UNANSWERED_STATUS) <= set(Q850_CAUSES)


def test_a_scenario_s_own_reason_counts_as_normal_clearing() -> None:
    assert q850_cause("customer_said_goodbye") == 16
    assert q850_cause(None) == 16
