"""Request bodies of the Call Control commands (seed 002 ``*Request`` schemas).

Fields keep the seed's names and defaults. Unknown fields are ignored, as
the hosted API does (an SDK newer than the seed may send fields it does not
know); a field we know with a wrong type or value is a 422 naming it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DTMF = r"^[0-9A-Da-d*#wW]+$"
KEYS = r"^[0-9A-D*#]+$"
DISPLAY_NAME = r"^[^\x00-\x1f\x7f]*$"  # a SIP display name: no control characters
LANGUAGE = r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$"


class Command(BaseModel):
    """What every command may carry: state echoed on later events, and an id that
    makes a repeated command a no-op."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    client_state: str | None = Field(default=None, max_length=4096)
    command_id: str | None = Field(default=None, max_length=256)

    @field_validator("client_state")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("must be a valid Base-64 encoded string") from None
        return value


class WithWebhook(Command):
    webhook_url: str | None = Field(default=None, pattern=r"(?i)^https?://\S+$", max_length=2048)
    webhook_url_method: Literal["POST", "GET"] = "POST"


class CustomHeader(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    value: str = Field(max_length=1024)


AmdMode = Literal["detect", "detect_beep", "detect_words", "greeting_end", "disabled", "premium"]


class DialIn(WithWebhook):
    """``POST /calls``."""

    to: str = Field(min_length=1, max_length=512)
    from_: str = Field(alias="from", min_length=1, max_length=256)
    connection_id: str = Field(min_length=1, max_length=128)
    from_display_name: str | None = Field(default=None, max_length=128, pattern=DISPLAY_NAME)
    timeout_secs: int = Field(default=30, ge=5, le=600)
    time_limit_secs: int = Field(default=14400, ge=30, le=14400)
    answering_machine_detection: AmdMode = "disabled"
    answering_machine_detection_config: dict[str, int] | None = None
    custom_headers: list[CustomHeader] = Field(default_factory=list, max_length=32)
    sip_auth_username: str | None = Field(default=None, max_length=256)
    sip_auth_password: str | None = Field(default=None, max_length=256)
    audio_url: str | None = Field(default=None, max_length=2048)
    media_name: str | None = None
    link_to: str | None = Field(default=None, max_length=64)
    billing_group_id: str | None = None


class RejectIn(Command):
    cause: Literal["CALL_REJECTED", "USER_BUSY"]


class SpeakIn(Command):
    payload: str = Field(min_length=1, max_length=3000)
    payload_type: Literal["text", "ssml"] = "text"
    service_level: Literal["basic", "premium"] = "premium"
    voice: str = Field(min_length=1, max_length=128)
    """``male`` or ``female`` choose our voice; a provider's voice name (``Polly.Joanna``)
    is read as the default voice, as no such engine is here."""
    language: str | None = Field(default=None, pattern=LANGUAGE)
    stop: str | None = None


Loop = Annotated[int, Field(ge=1, le=1000)] | Literal["infinity"]


class PlaybackIn(Command):
    audio_url: str | None = Field(default=None, min_length=1, max_length=2048)
    media_name: str | None = None
    loop: Loop = 1
    overlay: bool = False
    stop: str = "all"
    target_legs: str = "self"


class PlaybackStopIn(Command):
    stop: str = "all"


class GatherIn(Command):
    minimum_digits: int = Field(default=1, ge=1, le=128)
    maximum_digits: int = Field(default=128, ge=1, le=128)
    maximum_tries: int = Field(default=3, ge=1, le=10)
    timeout_millis: int = Field(default=60000, ge=0, le=600000)
    inter_digit_timeout_millis: int = Field(default=5000, ge=0, le=600000)
    terminating_digit: str = Field(default="#", pattern=r"^[0-9A-D*#]$")
    valid_digits: str = Field(default="0123456789#*", pattern=KEYS)


class GatherAudioIn(GatherIn):
    audio_url: str | None = Field(default=None, max_length=2048)
    invalid_audio_url: str | None = Field(default=None, max_length=2048)
    media_name: str | None = None
    invalid_media_name: str | None = None


class GatherSpeakIn(GatherIn):
    payload: str = Field(min_length=1, max_length=3000)
    invalid_payload: str | None = Field(default=None, max_length=3000)
    payload_type: Literal["text", "ssml"] = "text"
    service_level: Literal["basic", "premium"] = "premium"
    voice: str = Field(min_length=1, max_length=128)
    """``male`` or ``female`` choose our voice; a provider's voice name (``Polly.Joanna``)
    is read as the default voice, as no such engine is here."""
    language: str | None = Field(default=None, pattern=LANGUAGE)


class SendDtmfIn(Command):
    digits: str = Field(min_length=1, max_length=64, pattern=DTMF)
    duration_millis: int = Field(default=250, ge=100, le=500)


class RecordStartIn(Command):
    format: Literal["wav", "mp3"]
    channels: Literal["single", "dual"]
    play_beep: bool = False
    max_length: int = Field(default=0, ge=0, le=14400)


class BridgeIn(Command):
    """The other call is ``call_control_id`` (the seed) or ``call_control_id_to_bridge_with``
    (what today's SDK sends)."""

    call_control_id: str | None = Field(default=None, min_length=1, max_length=128)
    call_control_id_to_bridge_with: str | None = Field(default=None, min_length=1, max_length=128)
    park_after_unbridge: str | None = None
    queue: str | None = None

    @property
    def other(self) -> str | None:
        return self.call_control_id or self.call_control_id_to_bridge_with


class TransferIn(WithWebhook):
    to: str = Field(min_length=1, max_length=512)
    from_: str | None = Field(default=None, alias="from", max_length=256)
    from_display_name: str | None = Field(default=None, max_length=128, pattern=DISPLAY_NAME)
    timeout_secs: int = Field(default=30, ge=5, le=600)
    time_limit_secs: int = Field(default=14400, ge=30, le=14400)
    custom_headers: list[CustomHeader] = Field(default_factory=list, max_length=32)
    audio_url: str | None = None
    target_leg_client_state: str | None = None
    answering_machine_detection: AmdMode = "disabled"
    answering_machine_detection_config: dict[str, int] | None = None
    sip_auth_username: str | None = Field(default=None, max_length=256)
    sip_auth_password: str | None = Field(default=None, max_length=256)


class ReferIn(Command):
    sip_address: str = Field(pattern=r"(?i)^sips?:\S+$", max_length=512)
    custom_headers: list[CustomHeader] = Field(default_factory=list, max_length=32)


class EnqueueIn(Command):
    queue_name: str = Field(min_length=1, max_length=128)
    max_wait_time_secs: int | None = Field(default=None, ge=1, le=86400)
    max_size: int = Field(default=100, ge=1, le=10000)


class ForkIn(Command):
    target: str | None = None
    rx: str | None = None
    tx: str | None = None
    stream_type: Literal["raw", "decrypted"] = "raw"
