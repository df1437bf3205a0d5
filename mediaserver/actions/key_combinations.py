"""Key combinations a caller presses in a conference room (``exit_on_key: "#0"``).

The Voxology seed's CONFERENCE (``seeds/003``) asks "which key combination"
mutes, unmutes or takes the caller out, and writes the combination as the
keys in the order they are pressed: ``"exit_on_key": "#0"`` is ``#`` then
``0``. :class:`KeyCombinations` recognises them in the keys a caller
presses: keys belong to one combination when each follows the one before
within :data:`COMBINATION_GAP` seconds, and a combination acts as soon as
its last key arrives, then the keys start over. When two combinations end
the same way (``0`` and ``#0``), the longer one wins. A combination that
would act in the beginning or middle of another would make that one
impossible to press, so :func:`combination_problem` refuses it.

Without an ``unmute_on_key``, or with the same keys as ``mute_on_key``, the
mute combination toggles (the native ``conference@v1``'s behaviour).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from mediaserver.actions.callapi import DTMF_KEYS

Command = Literal["exit", "mute", "unmute", "toggle"]

COMBINATION_GAP = 3.0
"""Seconds after which keys pressed so far no longer start a combination."""

MAX_COMBINATION = 8
"""Keys in one combination at most."""

COMBINATION_PATTERN = f"[{DTMF_KEYS}]{{1,{MAX_COMBINATION}}}"
"""A combination as a regular expression (1 to 8 of 0-9, *, #, A-D)."""


def commands(
    exit_on_key: str | None, mute_on_key: str | None, unmute_on_key: str | None
) -> dict[str, Command]:
    """Each combination and what it does (``None``: no such combination)."""
    found: dict[str, Command] = {}
    if exit_on_key:
        found[exit_on_key] = "exit"
    if mute_on_key:
        toggles = unmute_on_key is None or unmute_on_key == mute_on_key
        found[mute_on_key] = "toggle" if toggles else "mute"
    if unmute_on_key and unmute_on_key != mute_on_key:
        found[unmute_on_key] = "unmute"
    return found


def combination_problem(
    exit_on_key: str | None, mute_on_key: str | None, unmute_on_key: str | None
) -> tuple[str, str] | None:
    """(the parameter at fault, why) when the combinations cannot all be pressed."""
    named = [
        ("exit_on_key", exit_on_key),
        ("mute_on_key", mute_on_key),
        ("unmute_on_key", None if unmute_on_key == mute_on_key else unmute_on_key),
    ]
    given = [(name, keys) for name, keys in named if keys]
    for index, (name, keys) in enumerate(given):
        for other, other_keys in given[:index]:
            if keys == other_keys:
                return name, f"{name} and {other} are the same keys ({keys!r})"
    for name, keys in given:
        for other, other_keys in given:
            if other != name and keys in other_keys[:-1]:
                return name, (
                    f"{name} ({keys!r}) would act in the middle of {other} "
                    f"({other_keys!r}), which could then never be pressed; choose keys "
                    "that do not begin or sit inside another combination"
                )
    return None


class KeyCombinations:
    """Recognises combinations in one caller's keys, pressed one at a time."""

    def __init__(self, combinations: Mapping[str, Command], gap: float = COMBINATION_GAP) -> None:
        # Longest first: "#0" wins over "0" when both end the keys pressed.
        self._combinations = sorted(combinations.items(), key=lambda item: -len(item[0]))
        self._gap = gap
        self._longest = max((len(keys) for keys in combinations), default=0)
        self._pressed = ""
        self._last: float | None = None

    def press(self, key: str, now: float) -> Command | None:
        """What ``key``, pressed at ``now`` (seconds, any clock), completes, if anything."""
        if self._last is not None and now - self._last > self._gap:
            self._pressed = ""
        self._last = now
        self._pressed = (self._pressed + key)[-self._longest :] if self._longest else ""
        for keys, command in self._combinations:
            if self._pressed.endswith(keys):
                self._pressed = ""
                return command
        return None
