"""What a phone number itself tells: its country, its type, where it is.

Call records (Callr v1 ``cli_country_code``, ``cli_number_type``,
``number_country_code``) and Call Flow requests (Voxology ``caller_no_country``,
``caller_no_timezone``) carry facts a hosted platform reads from its carrier
data. A self-hosted server knows only the number, so they come from the
numbering plans of Google's libphonenumber (the ``phonenumbers`` package):
exact for the country and usually for the type and time zone. Anything the
plans do not say is ``None`` (the seeds' "possibly null").

The place (city, state) is left out on purpose: libphonenumber's geocoder
loads its whole prefix table at import, about 100 MB in every server process,
for a guess ("San Francisco, CA" for a US area code) the seeds allow to be
null.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType, timezone

_TYPE_NAMES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "FIXED",
    PhoneNumberType.MOBILE: "MOBILE",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "FIXED_OR_MOBILE",
    PhoneNumberType.TOLL_FREE: "TOLLFREE",
    PhoneNumberType.PREMIUM_RATE: "PREMIUM",
    PhoneNumberType.SHARED_COST: "SHARED_COST",
    PhoneNumberType.VOIP: "VOIP",
    PhoneNumberType.PERSONAL_NUMBER: "PERSONAL",
    PhoneNumberType.PAGER: "PAGER",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.VOICEMAIL: "VOICEMAIL",
}
"""libphonenumber's types under the upper-case names Callr v1 prints (``"MOBILE"``)."""

_UNKNOWN_ZONE = "Etc/Unknown"


@dataclass(frozen=True)
class NumberFacts:
    """What the numbering plan says about one number; ``None`` where it says nothing."""

    e164: str | None
    country: str | None
    """ISO 3166-1 alpha-2 (``"US"``)."""
    number_type: str | None
    timezone: str | None

    @property
    def valid(self) -> bool:
        return self.e164 is not None


NOTHING_KNOWN = NumberFacts(None, None, None, None)


@lru_cache(maxsize=4096)
def number_facts(number: str) -> NumberFacts:
    """The facts of ``number`` (E.164, ``+`` first); a SIP user name or a
    malformed number tells nothing."""
    if not number.startswith("+"):
        return NOTHING_KNOWN
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return NOTHING_KNOWN
    if not phonenumbers.is_valid_number(parsed):
        return NOTHING_KNOWN
    country = phonenumbers.region_code_for_number(parsed)
    zones = [zone for zone in timezone.time_zones_for_number(parsed) if zone != _UNKNOWN_ZONE]
    return NumberFacts(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        country=country,
        number_type=_TYPE_NAMES.get(phonenumbers.number_type(parsed)),
        timezone=zones[0] if len(zones) == 1 else None,
    )
