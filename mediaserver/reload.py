"""Reloading the config's scenarios and routes on SIGHUP, without dropping calls.

Theory of operation: on SIGHUP the config file is read again and the scenario
folder of the running server is read again, all of it validated as at
start-up. When anything is wrong the reload is refused whole: the errors are
logged (each as ``FILE:LINE:COL: message``) and the server keeps what it was
running. Otherwise :meth:`Server.reload <mediaserver.server.Server.reload>`
swaps in, in one step with no await in between:

- the file scenarios (new, changed and removed files);
- ``routes`` (numbers attached through the API are live already);
- ``users`` (who may register and call with digest credentials);
- ``webhooks`` of the config file.

A call in progress keeps the scenario object it started with, so it runs to
its end as it was; only calls that arrive after the reload see the new ones.

Sections that bind sockets, open files or are read once at start (``sip``,
``rtp``, ``http``, ``storage``, ``trunks``, ``data_dir``, ``scenarios_dir``)
are not applied: when they changed, a warning names them and says a restart
is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from mediaserver.config import Config
from mediaserver.library import read_scenario_files
from mediaserver.log import get_logger
from mediaserver.yamlsource import ProblemsError

if TYPE_CHECKING:
    from mediaserver.server import Server

log = get_logger("reload")

RESTART_ONLY = ("sip", "rtp", "http", "storage", "trunks", "data_dir", "scenarios_dir", "node")
"""Config sections a reload does not apply (see the module's docstring)."""

T = TypeVar("T")


@dataclass(frozen=True)
class NameChanges:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare_names(old: Mapping[str, T], new: Mapping[str, T]) -> NameChanges:
    """What ``new`` adds, changes and removes relative to ``old``, by key."""
    return NameChanges(
        added=tuple(sorted(set(new) - set(old))),
        changed=tuple(sorted(k for k in set(old) & set(new) if old[k] != new[k])),
        removed=tuple(sorted(set(old) - set(new))),
    )


@dataclass(frozen=True)
class ReloadChanges:
    """What a reload changed, for its log line."""

    scenarios: NameChanges
    routes: NameChanges
    users: NameChanges  # by user name; passwords are never logged
    webhooks: bool
    restart_needed: tuple[str, ...]  # config sections that changed but apply only at start

    def __bool__(self) -> bool:
        return bool(self.scenarios or self.routes or self.users or self.webhooks)

    def log_fields(self) -> dict[str, Any]:
        """The non-empty changes as log fields, e.g. ``scenarios_added=["ivr"]``."""
        out: dict[str, Any] = {}
        for what in ("scenarios", "routes", "users"):
            names: NameChanges = getattr(self, what)
            for kind in fields(names):
                value = getattr(names, kind.name)
                if value:
                    out[f"{what}_{kind.name}"] = list(value)
        if self.webhooks:
            out["webhooks_changed"] = True
        return out


def compare(
    old: Config, new: Config, old_sources: Mapping[str, str], new_sources: Mapping[str, str]
) -> ReloadChanges:
    """The changes from the running ``old`` config and scenario sources to the new ones."""
    return ReloadChanges(
        scenarios=compare_names(old_sources, new_sources),
        routes=compare_names(old.routes, new.routes),
        users=compare_names(
            {u.username: u.password for u in old.users}, {u.username: u.password for u in new.users}
        ),
        webhooks=old.webhooks != new.webhooks,
        restart_needed=tuple(s for s in RESTART_ONLY if getattr(old, s) != getattr(new, s)),
    )


async def reload_once(server: Server, load: Callable[[], Config]) -> ReloadChanges | None:
    """Read the config with ``load`` and apply it to ``server``; what changed, or None
    (logged) when the config or a scenario has errors and nothing was applied."""
    log.info("reloading", config=str(server.config.path))
    try:
        try:
            new = await asyncio.to_thread(load)  # off the loop that paces the media
        except ProblemsError as exc:
            # Report the scenario files' mistakes too: every one is fixed in one round.
            files = await asyncio.to_thread(read_scenario_files, server.config.scenarios_dir)
            raise ProblemsError([*exc.problems, *files.problems]) from None
        changes = await server.reload(new)
    except ProblemsError as exc:
        log.error(
            "reload refused: fix these errors and send SIGHUP again; "
            "the running scenarios and routes stay as they were",
            errors=[str(p) for p in exc.problems],
        )
        return None
    except ValueError as exc:  # a command-line override the new config cannot take
        log.error("reload refused: nothing was changed", error=str(exc))
        return None
    if changes.restart_needed:
        log.warning(
            "reload: these config sections changed but apply only after a restart",
            sections=list(changes.restart_needed),
        )
    if changes:
        log.info("reloaded", **changes.log_fields())
    else:
        log.info("reloaded: no change to scenarios, routes, users or webhooks")
    return changes


async def serve_reloads(server: Server, wanted: asyncio.Event, load: Callable[[], Config]) -> None:
    """Reload each time ``wanted`` is set (by the SIGHUP handler); runs until cancelled.
    Signals that come while a reload runs are folded into one more reload."""
    while True:
        await wanted.wait()
        wanted.clear()
        await reload_once(server, load)
