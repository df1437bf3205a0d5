"""Every action the runner knows, by ``name@vN``.

To add an action: write its :class:`ActionDefinition` in a module under
:mod:`mediaserver.actions.builtin` with an ``ACTIONS`` tuple, and list the
module in ``_MODULES`` below. :data:`PLANNED` names the SPEC actions not
implemented yet, so scenarios using them get "not available in this
version yet" rather than "unknown action".
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mediaserver.actions.builtin import (
    audio_file,
    call,
    callflow,
    conference,
    detect,
    dial,
    echo,
    fetch,
    flow,
    foreach,
    fork,
    gather,
    keys,
    message,
    pause,
    play,
    queue,
    realtime,
    record,
    say,
    stop,
    transfer,
    webhook,
)
from mediaserver.actions.definition import ActionDefinition

_MODULES = (
    call, say, play, pause, echo, gather, flow, dial, keys, record, conference, stop, queue,
    transfer, fork,
    foreach, fetch, webhook, message, detect, callflow, realtime, audio_file,
)  # fmt: skip

ACTIONS: Mapping[str, ActionDefinition] = MappingProxyType(
    {definition.key: definition for module in _MODULES for definition in module.ACTIONS}
)
"""``name@vN`` -> definition."""

PLANNED: frozenset[str] = frozenset()
"""SPEC section 3 actions that a later version will implement (none today: a name
added here is refused as "not available in this version yet")."""


def lookup(name: str, version: int) -> ActionDefinition | None:
    return ACTIONS.get(f"{name}@v{version}")


def versions(name: str) -> list[int]:
    """The versions of ``name`` that exist, oldest first."""
    return sorted(d.version for d in ACTIONS.values() if d.name == name)


def names() -> list[str]:
    """Every action name, implemented or planned."""
    return sorted({d.name for d in ACTIONS.values()} | PLANNED)
