"""What the peer hears straight from the call's own leg: prompts and echo.

A prompt is encoded once and paced out by the media clock; a key in its stop
keys interrupts it, and a stop key pressed before it started skips it
(type-ahead: the key stays buffered for the ``gather@v1`` that follows).
Echo sends the peer's audio straight back, undecoded. Both answer the call
first, or play as early media after ``progress@v1`` (``Call._ensure_media``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediaserver.calls.base import Call
    from mediaserver.media.pcm import Pcm


async def play(call: Call, audio: Pcm, stop_keys: str) -> str | None:
    """Play ``audio``; the stop key that interrupted it, or None when it played out."""
    await call._ensure_media()
    key = call.digits.buffered_key(stop_keys)
    if key is not None:
        return key  # type-ahead: a key pressed before the prompt skips it
    playback = call.leg.play(audio)
    try:
        while True:
            await call.wait_any([playback.done], None)
            call.check()
            key = call.digits.buffered_key(stop_keys)
            if key is not None:
                return key
            if playback.done.done():
                return None
    finally:
        if not playback.done.done():
            call.leg.stop_playback()


async def echo(call: Call, seconds: float | None) -> None:
    """Send the peer's audio back to it for ``seconds`` (until the call ends: None)."""
    await call._ensure_media()
    call.leg.set_echo(True)
    try:
        await call.wait_any([], seconds, wake_on_digit=False)
        call.check()
    finally:
        call.leg.set_echo(False)
