"""Typed Voxology actions, as :mod:`.actions` builds them from a callback response.

Values are already checked and normalised: durations in the units the
engine wants (milliseconds converted where the seed gives milliseconds),
DTMF key names as keys (``pound`` is ``#``, ``off`` is None), voices as the
native ``female``/``male``. Strings the seed marks with ``*`` (interpolated
"live") are kept as written, their ``${...}`` already syntax-checked; they
are interpolated when the action runs. ``path`` locates the action in the
response (``actions[2].then[0]``) for every message about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, eq=False)
class Action:
    """What every action has (seed, "Action Types"): a type, a name, its place."""

    TYPE: ClassVar[str] = ""
    path: str
    name: str | None

    @property
    def where(self) -> str:
        """``actions[2].then[0] (SAY)``: how messages name this action."""
        return f"{self.path} ({self.TYPE})" if self.TYPE else self.path


Actions = tuple[Action, ...]


@dataclass(frozen=True)
class Events:
    """Event handlers of an action (``events: {on_error: [...]}``), by event name."""

    handlers: tuple[tuple[str, Actions], ...] = ()

    def get(self, event: str) -> Actions:
        for name, actions in self.handlers:
            if name == event:
                return actions
        return ()

    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.handlers)


@dataclass(frozen=True, eq=False)
class Say(Action):
    TYPE: ClassVar[str] = "SAY"
    text: str = ""
    repeat: int = 1
    stop_on_key: bool = False
    voice: str | None = None  # female or male; None: the scenario default
    language: str | None = None  # a BCP 47 tag; None: the scenario default


@dataclass(frozen=True, eq=False)
class Play(Action):
    TYPE: ClassVar[str] = "PLAY"
    url: str | None = None
    dtmf: str | None = None
    repeat: int = 1
    stop_on_key: bool = False
    dtmf_delay_ms: int = 250
    dtmf_dash_delay_ms: int = 250


@dataclass(frozen=True, eq=False)
class Pause(Action):
    TYPE: ClassVar[str] = "PAUSE"
    seconds: float = 5.0


@dataclass(frozen=True, eq=False)
class Collect(Action):
    TYPE: ClassVar[str] = "COLLECT"
    num_digits: int = 1
    timeout_ms: int = 5000
    finish_on_key: str | None = "#"
    prompt: tuple[Say | Play | Pause, ...] = ()


@dataclass(frozen=True, eq=False)
class Conference(Action):
    TYPE: ClassVar[str] = "CONFERENCE"
    room: str = ""
    hold_audio: str | None = None
    join_muted: bool = False
    max_participants: int | None = None
    beep: bool = False
    mute_on_key: str | None = None  # keys pressed in order ("#0"), as exit_on_key
    unmute_on_key: str | None = None  # None: mute_on_key toggles
    exit_on_key: str | None = None
    hold_on_join: bool = False
    start_on_join: bool = True
    end_on_exit: bool = False
    hold_on_exit: bool = False
    send_dtmf: bool = False
    receive_dtmf: bool = False
    events: Events = Events()


@dataclass(frozen=True, eq=False)
class Transfer(Action):
    TYPE: ClassVar[str] = "TRANSFER"
    number: str = ""
    caller_id: str | None = None
    event: str = "start"  # start, or stop: hang up an async TRANSFER's call
    is_async: bool = False


@dataclass(frozen=True, eq=False)
class Dial(Action):
    TYPE: ClassVar[str] = "DIAL"
    number: str = ""
    caller_id: str | None = None
    timeout: float = 50.0
    session_data: Any = None  # an object, or a string: a JavaScript expression
    detection: str = "none"  # none, preconnect or full
    max_call_time: float | None = None  # seconds; None: the seed's default, 86400
    override_config: str | None = None  # a number whose callflow: route the call uses
    events: Events = Events()


@dataclass(frozen=True, eq=False)
class Queue(Action):
    TYPE: ClassVar[str] = "QUEUE"
    queue: str = ""
    event: str = "offer"  # offer, poll, poll_connect or remove
    is_async: bool = False  # an offer that does not block
    max_calls: int | None = None
    events: Events = Events()


@dataclass(frozen=True, eq=False)
class Record(Action):
    TYPE: ClassVar[str] = "RECORD"
    command: str = "start"  # start, stop, pause, resume
    group: str | None = None


@dataclass(frozen=True, eq=False)
class RecordMessage(Action):
    TYPE: ClassVar[str] = "RECORDMESSAGE"
    command: str = "start"  # start, play, discard or save
    finish_on_key: str | None = "any"  # a key, "any" or None
    group: str | None = None
    max_seconds: float = 30.0
    silence_seconds: float = 5.0
    events: Events = Events()


@dataclass(frozen=True, eq=False)
class Redirect(Action):
    TYPE: ClassVar[str] = "REDIRECT"
    url: str = ""
    method: str | None = None
    headers: tuple[tuple[str, str], ...] | None = None
    content_type: str | None = None


@dataclass(frozen=True, eq=False)
class Reject(Action):
    TYPE: ClassVar[str] = "REJECT"
    reason: str = "busy"  # busy or disconnected


@dataclass(frozen=True, eq=False)
class Hangup(Action):
    TYPE: ClassVar[str] = "HANGUP"


@dataclass(frozen=True, eq=False)
class If(Action):
    TYPE: ClassVar[str] = "IF"
    condition: str = "false"
    then: Actions = ()
    or_else: Actions = ()


@dataclass(frozen=True, eq=False)
class Goto(Action):
    TYPE: ClassVar[str] = "GOTO"
    label: str = ""


@dataclass(frozen=True, eq=False)
class Label(Action):
    TYPE: ClassVar[str] = "LABEL"


@dataclass(frozen=True, eq=False)
class Foreach(Action):
    TYPE: ClassVar[str] = "FOREACH"
    iterator: str = "[]"
    value_var: str = "$val"
    key_var: str = "$key"
    index_var: str = "$index"
    then: Actions = ()


@dataclass(frozen=True, eq=False)
class SessionData(Action):
    TYPE: ClassVar[str] = "SESSIONDATA"
    value: Any = None  # an object, or a string: a JavaScript expression


@dataclass(frozen=True, eq=False)
class Webhook(Action):
    TYPE: ClassVar[str] = "WEBHOOK"
    event_name: str = ""
    data: Any = None  # an object (sent as is), or a string: a JavaScript expression
    url: str | None = None
    method: str | None = None
    headers: tuple[tuple[str, str], ...] | None = None
    await_response: bool = False
    timeout: float = 30.0
    events: Events = Events()


@dataclass(frozen=True, eq=False)
class Stop(Action):
    TYPE: ClassVar[str] = "STOP"


@dataclass(frozen=True, eq=False)
class Detect(Action):
    TYPE: ClassVar[str] = "DETECT"
    trigger_seconds: float = 3.0
    events: Events = Events()


@dataclass(frozen=True, eq=False)
class Sms(Action):
    TYPE: ClassVar[str] = "SMS"
    message: str = ""
    to: str | None = None
    sender: str | None = None


@dataclass(frozen=True, eq=False)
class Assign(Action):
    """``{"$var": "expression", ...}``: the seed's "Variable Handling"."""

    pairs: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Response:
    """A whole callback response."""

    actions: Actions
    name: str | None = None


def walk(actions: Actions) -> list[Action]:
    """Every action of a list, nested ones included, depth first."""
    out: list[Action] = []
    for action in actions:
        out.append(action)
        for sublist in sublists(action):
            out.extend(walk(sublist))
    return out


def sublists(action: Action) -> tuple[Actions, ...]:
    """The action lists nested in ``action`` and run as actions: then, orElse and
    each event handler (a COLLECT's child actions are its prompt, not actions)."""
    if isinstance(action, If):
        return (action.then, action.or_else)
    if isinstance(action, Foreach):
        return (action.then,)
    events = getattr(action, "events", None)
    if isinstance(events, Events):
        return tuple(handler for _, handler in events.handlers)
    return ()
