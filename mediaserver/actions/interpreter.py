"""The one interpreter of action lists, shared by scenario runs and the Call Flow Loop.

Theory of operation: an :class:`Interpreter` walks a list of actions in
order and hands each one to its ``step`` function; what an action *does* is
the step's business (:class:`~mediaserver.actions.runner.Run` runs an
``ActionItem`` through its definition, the Call Flow Loop runs a Voxology
action through :mod:`mediaserver.callflow.steps`). What the interpreter owns
is the control flow common to both:

- a jump: ``goto@v1`` and Voxology's GOTO raise :class:`Jump`; each list
  being walked that holds the label continues there, the others let it pass
  outwards, so a jump can go within its list or out to an enclosing one. A
  jump that leaves the outermost list is the caller's to report;
- the loop guard: at most ``max_steps`` steps (SPEC section 3), then the
  exception ``guard`` builds for the step that would have exceeded it;
- fairness: a forced yield every :data:`YIELD_EVERY` steps, so a run of
  instant actions (a ``goto`` loop) cannot starve the other calls.

Nested lists (``then``, ``on-error``, event handlers) are walked by the same
instance through :meth:`Interpreter.run_list`, so the count and the labels
are shared with the outer lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

Action = TypeVar("Action")

MAX_STEPS = 10_000
"""Loop guard: actions one run (or one Call Flow answer) may start (SPEC section 3)."""

YIELD_EVERY = 100
"""Steps between forced yields to the event loop."""


class Jump(BaseException):
    """A goto: continue at ``label`` in the current or an enclosing action list.

    A ``BaseException``, so that no ``except Exception`` of an action swallows it."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


class Interpreter(Generic[Action]):
    """Walks action lists of one kind of ``Action``; see the module docstring.

    ``step`` runs one action; ``label_of`` names the label an action marks
    (None for most); ``guard`` builds what to raise when ``max_steps`` is
    exceeded, given the action that was about to run and the limit.
    """

    def __init__(
        self,
        step: Callable[[Action], Awaitable[None]],
        *,
        label_of: Callable[[Action], str | None],
        guard: Callable[[Action, int], BaseException],
        max_steps: int = MAX_STEPS,
    ) -> None:
        self._step = step
        self._label_of = label_of
        self._guard = guard
        self.max_steps = max_steps
        self.steps = 0
        """Steps started since the start (or the last :meth:`restart`)."""
        # Each list's labels, computed once; the list is kept with them so that its id
        # cannot be reused by another list while the entry exists.
        self._labels: dict[int, tuple[Sequence[Action], dict[str, int]]] = {}

    def restart(self) -> None:
        """Count from zero and forget the lists seen (a new Call Flow answer)."""
        self.steps = 0
        self._labels.clear()

    async def run_list(self, actions: Sequence[Action]) -> None:
        """Run ``actions`` in order, following jumps to labels of this list; a
        :class:`Jump` to a label it does not hold goes out to the caller."""
        labels = self._labels_of(actions)
        index = 0
        while index < len(actions):
            try:
                await self._run_one(actions[index])
            except Jump as jump:
                target = labels.get(jump.label)
                if target is None:
                    raise
                index = target
                continue
            index += 1

    async def _run_one(self, action: Action) -> None:
        if self.steps >= self.max_steps:
            raise self._guard(action, self.max_steps)
        self.steps += 1
        if self.steps % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        await self._step(action)

    def _labels_of(self, actions: Sequence[Action]) -> dict[str, int]:
        known = self._labels.get(id(actions))
        if known is not None and known[0] is actions:
            return known[1]
        labels: dict[str, int] = {}
        for index, action in enumerate(actions):
            label = self._label_of(action)
            if label:
                labels[label] = index
        self._labels[id(actions)] = (actions, labels)
        return labels


def entries(items: Any) -> list[tuple[str | int, Any]] | None:
    """What a foreach iterates: (key, value) pairs, a list's by index, an object's
    by key; None for anything else. Taken once, so the body may change the collection."""
    if isinstance(items, list):
        return list(enumerate(items))
    if isinstance(items, dict):
        return list(items.items())
    return None
