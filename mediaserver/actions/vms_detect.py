"""Callr's outbound voicemail detection (``App.Param.VmsDetect``, seeds/000):
methods ``DTMF`` and ``SILENCE``, for ``detect@v1``, ``dial@v1``'s
``vms_detect`` and API-started calls (``options.vms_detect``).

The seed names the parameters; what each method does is read from them:

- ``DTMF``: the callee must press a key to accept the call. Each of
  ``dtmf_iterations`` tries (default 2) plays ``dtmf_media`` if any (a key
  pressed during it counts) and waits ``dtmf_timeout`` seconds (default 2)
  for a key. A key: ``human``; none after every try: ``voicemail`` (an
  answering machine presses nothing).
- ``SILENCE``: a person answers with a short "Hello?" and waits; a machine
  plays a greeting of several seconds. Each of ``silence_iterations`` tries
  (default 1, 1 to 30) plays ``silence_media`` if any, then listens for
  ``silence_ms`` of silence in a row (default 1800, 50 to 10000) starting
  within ``silence_timeout`` seconds (default 3, 0 to 120; the listening
  lasts that plus ``silence_ms``). Silence heard: ``human``; sound all along
  (a greeting) on every try: ``voicemail``. Silence is measured as the
  answering-machine detector measures it (:mod:`mediaserver.media.silence`).

``*_media`` is Callr's media id; here ``0`` or ``null`` is none and a string
is what ``play@v1`` plays: a tone name, a sound file or an http(s) URL.
``active: false`` turns detection off (the call is taken as answered by a
person).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mediaserver.media.pcm import Pcm
from mediaserver.media.silence import SilenceWatch

if TYPE_CHECKING:
    from mediaserver.actions.callapi import CallApi

Method = Literal["DTMF", "SILENCE"]
METHODS: tuple[Method, ...] = ("DTMF", "SILENCE")
ANY_KEY = "0123456789*#ABCD"

# name: (default, minimum, maximum); the seed's defaults and, where it gives them, bounds.
_NUMBERS: dict[str, tuple[int, int, int]] = {
    "dtmf_iterations": (2, 1, 10),
    "dtmf_timeout": (2, 1, 60),
    "silence_iterations": (1, 1, 30),
    "silence_ms": (1800, 50, 10000),
    "silence_timeout": (3, 0, 120),
}
_MEDIA = ("dtmf_media", "silence_media")
FIELDS = ("active", "method", *_NUMBERS, *_MEDIA)


class VmsDetectError(ValueError):
    """A bad ``App.Param.VmsDetect``: ``field`` names the offending key."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class VmsDetect:
    """One ``App.Param.VmsDetect``, checked."""

    method: Method
    active: bool = True
    dtmf_iterations: int = 2
    dtmf_media: str | None = None
    dtmf_timeout: int = 2
    silence_iterations: int = 1
    silence_media: str | None = None
    silence_ms: int = 1800
    silence_timeout: int = 3

    @property
    def media(self) -> str | None:
        """What the method plays before each try."""
        return self.dtmf_media if self.method == "DTMF" else self.silence_media


@dataclass(frozen=True)
class VmsVerdict:
    """Who answered, by the method's rule."""

    result: Literal["human", "voicemail"]
    method: Method
    reason: Literal["dtmf", "no_dtmf", "silence", "no_silence"]
    attempts: int
    key: str | None = None

    def as_variable(self) -> dict[str, object]:
        return {
            "result": self.result,
            "method": self.method,
            "reason": self.reason,
            "attempts": self.attempts,
            "key": self.key,
        }


def vms_detect_from(data: Any, where: str = "vms_detect") -> VmsDetect:
    """The settings of a VmsDetect object; :class:`VmsDetectError` names ``where.key``."""
    if not isinstance(data, Mapping):
        raise VmsDetectError(where, "expected a mapping (method: DTMF or SILENCE, ...)")
    unknown = sorted(str(key) for key in data if key not in FIELDS)
    if unknown:
        raise VmsDetectError(
            f"{where}.{unknown[0]}", f"unknown field; the fields are {', '.join(FIELDS)}"
        )
    method = data.get("method")
    if method not in METHODS:
        raise VmsDetectError(f"{where}.method", f"must be DTMF or SILENCE, not {method!r}")
    active = data.get("active", True)
    if not isinstance(active, bool):
        raise VmsDetectError(f"{where}.active", f"must be true or false, not {active!r}")
    numbers: dict[str, int] = {}
    for name, (default, low, high) in _NUMBERS.items():
        value = data.get(name, default)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise VmsDetectError(
                f"{where}.{name}", f"must be a whole number from {low} to {high}, not {value!r}"
            )
        numbers[name] = value
    media: dict[str, str | None] = {}
    for name in _MEDIA:
        value = data.get(name)
        if value is None or value == 0:
            media[name] = None
        elif isinstance(value, str) and value.strip():
            media[name] = value.strip()
        else:
            raise VmsDetectError(
                f"{where}.{name}",
                f"must be 0 (none) or what play@v1 plays (a tone name, a sound file or an "
                f"http(s) URL), not {value!r}; Callr's numeric media ids do not exist here",
            )
    return VmsDetect(
        method=method,
        active=active,
        dtmf_iterations=numbers["dtmf_iterations"],
        dtmf_media=media["dtmf_media"],
        dtmf_timeout=numbers["dtmf_timeout"],
        silence_iterations=numbers["silence_iterations"],
        silence_media=media["silence_media"],
        silence_ms=numbers["silence_ms"],
        silence_timeout=numbers["silence_timeout"],
    )


async def detect_voicemail(call: CallApi, settings: VmsDetect, media: Pcm | None) -> VmsVerdict:
    """Run ``settings``' method on an answered ``call`` (``media`` is its prompt, decoded)."""
    if settings.method == "DTMF":
        return await _by_dtmf(call, settings, media)
    return await _by_silence(call, settings, media)


async def _by_dtmf(call: CallApi, settings: VmsDetect, media: Pcm | None) -> VmsVerdict:
    call.flush_digits()  # only a key pressed for this question accepts the call
    for attempt in range(1, settings.dtmf_iterations + 1):
        key = await call.play(media, stop_keys=ANY_KEY) if media is not None else None
        if key is None:
            key = await call.next_digit(settings.dtmf_timeout)
        if key is not None:
            return VmsVerdict("human", "DTMF", "dtmf", attempt, key)
    return VmsVerdict("voicemail", "DTMF", "no_dtmf", settings.dtmf_iterations)


async def _by_silence(call: CallApi, settings: VmsDetect, media: Pcm | None) -> VmsVerdict:
    watch = SilenceWatch(settings.silence_ms)
    listening = settings.silence_timeout + settings.silence_ms / 1000
    for attempt in range(1, settings.silence_iterations + 1):
        if media is not None:
            await call.play(media)
        watch.reset()
        await call.listen_frames(listening, watch.hear)
        if watch.heard:
            return VmsVerdict("human", "SILENCE", "silence", attempt)
    return VmsVerdict("voicemail", "SILENCE", "no_silence", settings.silence_iterations)
