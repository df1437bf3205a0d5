"""mediaserver/numbering.py: the facts a number's numbering plan gives."""

from __future__ import annotations

from mediaserver.numbering import NOTHING_KNOWN, number_facts


def test_a_us_number_has_its_country_and_zone() -> None:
    facts = number_facts("+14155552671")
    assert facts.e164 == "+14155552671"
    assert facts.country == "US"
    assert facts.timezone == "America/Los_Angeles"
    assert facts.valid


def test_a_french_mobile_is_typed() -> None:
    facts = number_facts("+33612345678")
    assert facts.country == "FR"
    assert facts.number_type == "MOBILE"
    assert facts.timezone == "Europe/Paris"


def test_a_toll_free_number_is_typed() -> None:
    assert number_facts("+18002530000").number_type == "TOLLFREE"


def test_what_is_not_an_e164_number_tells_nothing() -> None:
    for number in ("alice", "0612345678", "+", "+1", "+999123456789", "+33 abc"):
        assert number_facts(number) is NOTHING_KNOWN
        assert not number_facts(number).valid


def test_the_facts_cost_no_geocoder() -> None:
    """libphonenumber's geocoder is ~100 MB of prefix tables: never imported here."""
    import subprocess
    import sys

    probe = "import sys, mediaserver.numbering as n; n.number_facts('+14155552671'); "
    probe += "print('phonenumbers.geocoder' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
