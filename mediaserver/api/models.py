"""The shapes of the native HTTP API (SPEC section 5): request bodies, answers, errors.

Names follow the Callr v2 seed (``seeds/001``) where it has them: ``sid``,
``runid``, ``hasMore``/``hits`` pages, ``created``/``updated``, ``readAt``,
``lastfailed``, the ``{"code", "message"}`` status answer. Request models
forbid unknown fields, so a misspelt field is an error naming it instead of
being ignored. Times are RFC 3339 strings in UTC with milliseconds
(``2024-04-24T17:42:28.000Z``).
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar, overload

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")

# Ids are generated in lower case (8 characters of [a-z0-9]); the Callr seed writes
# them in capitals too (``api:9MNAB2H6``), so they are taken in any case and looked
# up lower-cased (:func:`canonical_id`).
SID_PATTERN = r"^[A-Za-z0-9]{8}$"
# A call id: ours, or the seed's CallID, an int64 >= 1 (``240711945874``).
CALLID_PATTERN = r"^(?:[A-Za-z0-9]{8}|[1-9][0-9]{0,18})$"
# A run id, PREFIX:ID: ours (``api:9mnab2h6``) and the seed's ActionRunID, at most 64
# characters (``api:9MNAB2H6``, ``inbound-call:240419830042``); the routes cap the length.
RUNID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}:[A-Za-z0-9]{1,32}$"
MAX_RUNID = 64
# E.164 as in the seed, or a SIP user part as routes use them (echo, ivr, alice).
NUMBER_PATTERN = r"^(\+[1-9][0-9]{5,32}|[A-Za-z0-9][A-Za-z0-9_.!~*'()-]{0,63})$"
# A scenario name is also a route target and a file stem: no slash, no leading dot.
SCENARIO_NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9 _.-]{0,62}[A-Za-z0-9_.-])?$"
EVENT_PATTERN = r"^[A-Za-z0-9_.*-]{1,100}$"
MAX_SCRIPT = 32768
MAX_PAGE = 100

Timestamp = Annotated[
    str,
    Field(
        json_schema_extra={"format": "date-time"},
        examples=["2024-04-24T17:42:28.000Z"],
        description="RFC 3339, UTC",
    ),
]


@overload
def canonical_id(value: str) -> str: ...
@overload
def canonical_id(value: None) -> None: ...
def canonical_id(value: str | None) -> str | None:
    """An id as it is stored: the server generates lower case, any case finds it."""
    return None if value is None else value.lower()


IdCase = AfterValidator(canonical_id)
"""Annotate a path or query id with this to look it up in any case."""


class RequestModel(BaseModel):
    """A request body: unknown fields are refused (422 naming them)."""

    model_config = ConfigDict(extra="forbid")


# --- errors and statuses ---------------------------------------------------------------------


class ErrorDetail(BaseModel):
    field: str | None = Field(description="the input at fault: a body field, query or path name")
    message: str
    line: int | None = Field(default=None, description="for scenario scripts: 1-based line")
    column: int | None = Field(default=None, description="for scenario scripts: 1-based column")


class ErrorInfo(BaseModel):
    code: str = Field(examples=["invalid_request"])
    message: str
    field: str | None = Field(default=None, description="the first input at fault")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorInfo

    def wire(self) -> dict[str, Any]:
        """The JSON sent: ``line``/``column`` only on the details that have them."""
        data = self.model_dump()
        for detail in data["error"]["details"]:
            for key in ("line", "column"):
                if detail[key] is None:
                    del detail[key]
        return data


class Status(BaseModel):
    """The seed's answer to deletions and commands."""

    code: str = Field(examples=["ok"])
    message: str


class ApiError(Exception):
    """An error answer: status, machine code, message and the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        details: list[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(
            error=ErrorInfo(code=code, message=message, field=field, details=details or [])
        )
        self.headers = headers


def not_found(what: str, ident: str, field: str) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {ident!r}", field)


# --- paging ----------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a search (the seed's search answer)."""

    offset: int
    total: int
    hasMore: bool
    hits: list[T]


# --- system ----------------------------------------------------------------------------------


class Pong(BaseModel):
    pong: Literal["pong"] = "pong"
    time: Timestamp
    node: str = Field(description="the answering server's node.name", examples=["node-a"])


# --- scenarios, runs, numbers ------------------------------------------------------------------

ScenarioName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=SCENARIO_NAME_PATTERN,
        description="letters, digits, space, '_', '.', '-'; used by routes and `mediaserver call`",
        examples=["call-forwarding"],
    ),
]
Script = Annotated[
    str, Field(min_length=1, max_length=MAX_SCRIPT, description="the scenario's YAML text")
]


class ScenarioIn(RequestModel):
    name: ScenarioName
    script: Script
    format: Literal["yaml"] = "yaml"


class ScenarioPatch(RequestModel):
    name: ScenarioName | None = None
    script: Script | None = None
    format: Literal["yaml"] | None = None


class Scenario(BaseModel):
    sid: str
    name: str
    script: str
    format: Literal["yaml"] = "yaml"
    version: Literal["1.0"] = Field(
        default="1.0",
        description="the version of the scenario language of the script (Callr Actions 1.0)",
    )
    origin: Literal["file", "api"] = Field(
        description="file: from scenarios_dir, read-only here; api: created through the API"
    )
    readonly: bool
    numbers: list[str]
    created: Timestamp
    updated: Timestamp


class ScenarioPage(Page[Scenario]):
    pass


class StartOptions(RequestModel):
    vms_detect: dict[str, Any] | None = Field(
        default=None,
        description="Callr's outbound voicemail detection on the call placed to `to` "
        "(App.Param.VmsDetect: method DTMF or SILENCE and their parameters); a voicemail "
        "is hung up and the branch runs without the call, $dial.status voicemail",
        examples=[{"method": "DTMF", "dtmf_timeout": 3, "dtmf_media": "press-a-key.wav"}],
    )


class StartIn(RequestModel):
    to: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        # A SIP URI, or an RFC 3261 25.1 user part: a registered user's name or a number.
        pattern=r"^(sips?:[!-~]+|[A-Za-z0-9\-_.!~*'()&=+$,;?/%]{1,64})$",
        description="what to call first: a SIP URI, a registered user's name, or a number "
        "(through the first trunk); without it the branch runs offline",
        examples=["sip:alice@127.0.0.1:5062"],
    )
    variables: dict[str, Any] = Field(
        default_factory=dict,
        max_length=64,
        description="initial $variables (names: ^\\$[a-zA-Z][a-zA-Z0-9_]{0,254}$)",
        examples=[{"$customer": "ACME"}],
    )
    options: StartOptions = Field(
        default_factory=StartOptions, description="how the call to `to` is placed"
    )


class RunStarted(BaseModel):
    runid: str = Field(examples=["api:9mnab2h6"], description="generated in lower case")


class Run(BaseModel):
    runid: str
    scenario: str = Field(description="the scenario's sid")
    branch: str
    status: Literal["running", "completed", "hangup", "failed", "cancelled", "interrupted"]
    variables: dict[str, Any]
    error: str | None
    started: Timestamp
    ended: Timestamp | None


# --- live calls ------------------------------------------------------------------------------


class LiveCall(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    direction: Literal["inbound", "outbound"]
    from_: str = Field(alias="from")
    to: str
    scenario: str | None
    state: Literal["ringing", "answered"]
    sipCallId: str
    started: Timestamp
    answered: Timestamp | None
    duration: float = Field(description="seconds since the call started")
    codec: str | None = Field(None, description="the RTP leg's codec (PCMU, PCMA...)")
    media: dict[str, Any] = Field(description="the RTP leg's counters so far")
    node: str = Field(description="node.name of the server that holds the call")


class LiveCallPage(Page[LiveCall]):
    pass


class ActionsIn(RequestModel):
    actions: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="action items as in a scenario branch; they replace what the call runs",
        examples=[[{"action": "say@v1", "params": {"text": "Hello"}}]],
    )


class ConferenceMember(BaseModel):
    callid: str
    muted: bool
    moderator: bool
    waiting: bool = Field(description="waiting for the moderator (hears hold audio)")
    talking: bool = Field(description="heard saying something now (the last 20 ms)")


class Conference(BaseModel):
    name: str
    participants: int
    members: list[ConferenceMember]
    recording: str | None = Field(None, description="id of the recording of the mix, if any")


class ConferencePage(Page[Conference]):
    pass


class Queue(BaseModel):
    name: str
    waiting: int
    longestWait: float = Field(description="seconds the first caller in line has waited")
    callids: list[str] = Field(description="the waiting calls, first in line first")


class QueuePage(Page[Queue]):
    pass


# --- call records ------------------------------------------------------------------------------


class ScenarioRef(BaseModel):
    sid: str | None
    name: str | None


class CallRecord(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    callid: str
    direction: Literal["inbound", "outbound"]
    status: Literal["live", "ended", "interrupted"]
    from_: str = Field(alias="from")
    fromName: str | None
    to: str
    number: str | None = Field(description="ours: the number or SIP user called (inbound)")
    scenario: ScenarioRef | None
    runid: str | None
    parentCallid: str | None
    sipCallId: str | None
    started: Timestamp
    answered: Timestamp | None
    ended: Timestamp | None
    duration: float | None = Field(description="seconds, start to hangup")
    durationAnswered: float | None = Field(description="seconds, answer to hangup")
    hangupCause: str | None
    hangupCauseCode: int | None
    hangupSource: str | None
    sipStatus: int | None
    dialStatus: str | None
    media: dict[str, Any] = Field(description="per leg: packets, bytes, loss, jitter...")
    cliPres: str | None = Field(
        None, description="allowed_passed_screen or prohib_passed_screen (Callr's cli_pres)"
    )
    customerField: str | None = Field(
        None, description="the run's customer_field variable (Callr's customer_field)"
    )


class CallRecordPage(Page[CallRecord]):
    pass


# --- recordings --------------------------------------------------------------------------------


class RecordingOptions(BaseModel):
    """How it was recorded (Callr's recording ``options``)."""

    format: str
    channels: int


class Recording(BaseModel):
    sid: str
    type: Literal["call", "recording", "conference", "voicemail"]
    status: Literal["recording", "ready", "interrupted"]
    callid: str | None
    caller: str | None
    callee: str | None
    scenario: ScenarioRef | None
    created: Timestamp
    read: bool
    readAt: Timestamp | None
    duration: float = Field(description="seconds")
    size: int = Field(description="bytes")
    format: str
    channels: int
    options: RecordingOptions
    transcription: None = Field(default=None, description="always null: no transcription here")
    url: str = Field(description="the audio as recorded")
    url_mp3: str = Field(description="the audio as MP3 (encoded on its first request)")


class RecordingPage(Page[Recording]):
    pass


class RecordingPatch(RequestModel):
    read: bool | None = None


class RecordingsPatch(RequestModel):
    """The seed's bulk update: the read status of the given recordings (or all)."""

    read: bool


TASK_ID_PATTERN = r"^[a-zA-Z0-9]{32,256}$"
"""The seed's TaskID."""


class TaskOut(BaseModel):
    """The seed's Task (``type`` and ``created`` are ours)."""

    id: str
    type: str = Field(description="calls.export, recordings.update or recordings.delete")
    status: Literal["pending", "running", "done", "error", "cancelled"]
    percent: int = Field(ge=0, le=100)
    created: Timestamp
    ended: Timestamp | None
    result: dict[str, Any] | None = Field(
        description="when done: what it did; an export's file is at result.url"
    )
    error: str | None


# --- webhooks ----------------------------------------------------------------------------------

EventPattern = Annotated[str, Field(pattern=EVENT_PATTERN, examples=["v2.call.*"])]
Endpoint = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        # ASCII only (percent-encode the rest): the same in Python and ECMA regexes.
        pattern=r"^https?://[A-Za-z0-9.:@%_~\[\]-]+(?:[/?#][!-~]*)?$",
        examples=["https://example.com/hooks"],
    ),
]
Secret = Annotated[str, Field(min_length=1, max_length=256)]


WebhookType = Literal[
    "v2.billing.credit.topup", "v2.billing.credit.warning", "v2.billing.credit.shutdown",
    "v2.call.inbound.started", "v2.call.inbound.ended", "v2.call.outbound.started",
    "v2.call.outbound.ended", "v2.number.assigned", "v2.number.unassigned", "v2.task.updated",
    "v2.audio-file.updated", "v2.recording.updated", "v2.sms.inbound.received",
    "v2.sms.outbound.updated",
]  # fmt: skip
"""The seed's WebhookType (seeds/001 "Create webhook")."""
HmacAlgo = Literal["MD5", "SHA1", "SHA256", "SHA512"]


class WebhookOptions(RequestModel):
    """The seed's Webhook.Options (seeds/000): how posts are encoded and signed."""

    format: Literal["JSON"] = "JSON"
    hmac_algo: HmacAlgo = Field(default="SHA256", description="the hash of the HMAC signature")
    hmac_secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=1024,
        description="signs each post (never shown back)",
    )


class WebhookIn(RequestModel):
    endpoint: Endpoint
    type: WebhookType | None = Field(
        default=None, description="the seed's way: one event type (or give it as ?type=)"
    )
    options: WebhookOptions | None = None
    events: list[EventPattern] | None = Field(
        default=None, min_length=1, max_length=50, description="patterns (default: every event)"
    )
    secret: Secret | None = Field(
        default=None,
        description="signs each post: X-Mediaserver-Signature = hex HMAC-SHA256 of the body",
    )
    status: Literal["enabled", "disabled"] = "enabled"


class WebhookPatch(RequestModel):
    status: Literal["enabled", "disabled"] | None = None
    events: list[EventPattern] | None = Field(default=None, min_length=1, max_length=50)
    secret: Secret | None = Field(default=None, description="a new secret; null stops signing")


class WebhookOptionsOut(BaseModel):
    format: Literal["JSON"] = "JSON"
    hmac_algo: HmacAlgo | None = Field(description="null when posts are not signed")


class Webhook(BaseModel):
    sid: str
    type: str | None = Field(description="the one event type it takes; null for patterns")
    endpoint: str
    events: list[str]
    status: Literal["enabled", "disabled", "disabled-admin", "disabled-system"]
    options: WebhookOptionsOut
    signed: bool = Field(description="whether posts carry X-Mediaserver-Signature")
    failed: int = Field(description="consecutive failed attempts")
    lastfailed: Timestamp | None
    created: Timestamp
    updated: Timestamp


class WebhookPage(Page[Webhook]):
    pass


class WebhookLog(BaseModel):
    id: str = Field(description="the event id (the same on every attempt)")
    sid: str = Field(description="the webhook's sid")
    endpoint: str
    type: str
    try_: int = Field(alias="try", description="attempts before this one")
    at: Timestamp
    httpcode: int | None
    outcome: Literal["delivered", "retrying", "failed"]
    error: str | None
    duration: float = Field(description="milliseconds")
    subject: str = Field(description="the call or recording the event is about")

    model_config = ConfigDict(populate_by_name=True)


class WebhookLogPage(Page[WebhookLog]):
    pass
