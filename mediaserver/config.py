"""The server configuration file (SPEC section 2).

:func:`load_config` reads the YAML, checks every section and returns a frozen
:class:`Config`. Every mistake is collected (not just the first) and raised
together as :class:`~mediaserver.yamlsource.ProblemsError`, each naming the
file, line, column and key, so a bad file is refused before anything starts.
Command-line overrides (SPEC section 1) are applied with :func:`with_overrides`.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from mediaserver.database_url import check_postgres_url, is_postgres_url
from mediaserver.yamlsource import (
    LocatedDict,
    LocatedList,
    Mark,
    Problem,
    ProblemsError,
    load_yaml_file,
)

SUPPORTED_CODECS = ("PCMU", "PCMA", "G722", "opus")
# G.711 only unless configured: wideband legs load libavcodec and transcode where
# audio is decoded (docs/sip.md, "Codecs").
DEFAULT_CODECS = ("PCMU", "PCMA")
SCENARIO_SUFFIXES = (".yaml", ".yml")
SCENARIO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
CALLFLOW_URL = re.compile(r"(?i)https?://[^\s/?#]+[^\s]*")
"""What follows ``callflow:`` in a route: the application's URL."""
RECORDING_LINE = "audio-recorder"
"""The route target of the line that records audio files over the phone (audio_phone.py)."""
APPLICATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What may follow ``call-control:`` in a route besides a URL: an application's id."""
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
"""``node.name``: a host-name-like label, shown in logs and the API."""


class LearnMode(StrEnum):
    """``rtp.learn_source``: who may become a leg's media source (media/latching.py)."""

    STRICT = "strict"
    STREAM = "stream"
    FIRST = "first"


@dataclass(frozen=True)
class ListenAddress:
    transport: str  # "udp", "tcp" or "tls"
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


@dataclass(frozen=True)
class TlsConfig:
    """``sip.tls``: what ``tls:`` listeners present, and the CAs peers are checked against."""

    certificate: Path | None = None  # None: a self-signed one kept in the data folder
    key: Path | None = None
    ca_file: Path | None = None  # None: the system's CA store


@dataclass(frozen=True)
class SipConfig:
    listen: tuple[ListenAddress, ...] = (
        ListenAddress("udp", "0.0.0.0", 5060),
        ListenAddress("tcp", "0.0.0.0", 5060),
    )
    public_address: str | None = None  # None: the listening address ("auto")
    user_agent: str = "mediaserver"
    # Sources whose calls may make the server dial out without authenticating.
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    realm: str = "mediaserver"  # digest realm of the users' challenges
    # Offered in this order; one challenge per algorithm (RFC 8760). MD5 alone by
    # default: some softphones (baresip 1.0) fail when a SHA-256 challenge is present.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    tls: TlsConfig = TlsConfig()


@dataclass(frozen=True)
class RtpConfig:
    port_min: int = 20000
    port_max: int = 29999
    codecs: tuple[str, ...] = DEFAULT_CODECS
    jitter_buffer_ms: int = 60
    learn_source: LearnMode = LearnMode.STREAM  # which RTP sources a leg latches onto
    srtp: str = "optional"  # off | optional | required | dtls: SRTP on the calls we answer
    # Processes that relay pure bridges (media/relay_workers.py); 0: the main loop does.
    relay_workers: int = field(default_factory=lambda: auto_relay_workers())


def auto_relay_workers() -> int:
    """``rtp.relay_workers: auto``: one per core, none on a single core (where a
    worker would only add the hand-over to the same CPU)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores if cores and cores > 1 else 0


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``rate`` a second on average, ``burst`` at once; rate 0 is no limit."""

    rate: float
    burst: float


@dataclass(frozen=True)
class LimitsConfig:
    """Flood control on SIP requests (``limits:``; :mod:`mediaserver.sip.ratelimit`).
    Trusted networks and trunk addresses are never limited."""

    per_source: Rate = Rate(20, 60)  # requests from one address
    per_user: Rate = Rate(5, 20)  # INVITE, MESSAGE and REGISTER of one digest user
    global_invites: Rate = Rate(200, 400)  # new INVITEs from all sources together
    block_after: int = 20  # refusals in a row before a source is blocked
    block_seconds: float = 60.0  # how long a blocked source is dropped unanswered
    max_sources: int = 10_000  # sources remembered (least recent forgotten first)


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    api_keys: tuple[str, ...] = ()
    # Names given to keys (``{name: ops, key: ...}`` items): the access log shows these.
    key_names: tuple[tuple[str, str], ...] = ()  # (key, name)
    access_log: Path | None = None  # JSON lines, one per request; None: the process log


@dataclass(frozen=True)
class StorageConfig:
    database: Path | str = Path("data/mediaserver.db")
    """An SQLite file, or a ``postgresql://`` URL (kept as text: a Path would merge ``//``)."""
    recordings: Path = Path("data/recordings")
    cache: Path = Path("data/cache")
    audio_files: Path = Path("data/audio-files")


@dataclass(frozen=True)
class TrunkConfig:
    name: str
    uri: str
    username: str | None = None
    password: str | None = None
    register: bool = False
    from_user: str | None = None
    keepalive: float = 30.0  # seconds between OPTIONS probes; 0: none
    # Over TLS (a sips: URI or transport=tls): how the trunk's certificate is checked.
    tls_verify: bool = True  # against tls_ca_file (else sip.tls.ca_file, else the system's)
    tls_ca_file: Path | None = None
    tls_fingerprint: str | None = None  # pinned SHA-256 of its certificate, instead of a CA
    srtp: str | None = (
        None  # off | optional | required | dtls, both ways; None: rtp.srtp in, off out
    )


@dataclass(frozen=True)
class UserConfig:
    username: str
    password: str
    srtp: str | None = (
        None  # off | optional | required | dtls, both ways; None: rtp.srtp in, off out
    )


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    events: tuple[str, ...] = ("*",)
    secret: str | None = None


SMTP_SECURITY = ("none", "starttls", "tls")


@dataclass(frozen=True)
class SmtpConfig:
    """The ``smtp:`` section: the server that delivers voicemail e-mails."""

    host: str
    sender: str  # the From address (``from:``)
    port: int = 587
    security: str = "starttls"  # none, starttls (RFC 3207) or tls (implicit, port 465)
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0


def host_name() -> str:
    """The default ``node.name``: this machine's host name, cut to a valid label."""
    name = socket.gethostname().split(".")[0]
    return name if NODE_NAME.fullmatch(name) else "mediaserver"


@dataclass(frozen=True)
class NodeConfig:
    """``node:``: which server this is when several run behind a proxy or share one
    database (SPEC section 10); the host name by default."""

    name: str = field(default_factory=host_name)
    lease: float = 30.0
    """Seconds this node's claim on shared work (a webhook post on its way) holds
    without renewal: after that another node sharing the database takes it over."""


@dataclass(frozen=True)
class Config:
    path: Path
    sip: SipConfig = SipConfig()
    rtp: RtpConfig = RtpConfig()
    limits: LimitsConfig = LimitsConfig()
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    trunks: tuple[TrunkConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    scenarios_dir: Path = Path("scenarios")
    routes: dict[str, str] = field(default_factory=dict)
    data_dir: Path = Path(".")
    smtp: SmtpConfig | None = None  # None: no e-mail delivery
    node: NodeConfig = field(default_factory=NodeConfig)

    def database_target(self) -> Path | str:
        """``storage.database`` as the store opens it: a file resolved like the other
        storage paths, or the PostgreSQL URL as written."""
        database = self.storage.database
        return database if isinstance(database, str) else self.storage_path(database)

    def storage_path(self, path: Path) -> Path:
        """A storage path, relative ones resolved against the data folder."""
        return path if path.is_absolute() else self.data_dir / path


T = TypeVar("T")


class _Checker:
    """Collects problems while reading one located YAML document."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def error(self, mark: Mark, message: str) -> None:
        self.problems.append(Problem(self.file, mark, message))

    def section(
        self, parent: LocatedDict, key: str, allowed: set[str], path: str
    ) -> LocatedDict | None:
        """A mapping under ``key`` (None when absent or wrong), unknown keys reported."""
        if key not in parent or parent[key] is None:
            return None
        value = parent[key]
        if not isinstance(value, LocatedDict):
            self.error(parent.value_mark(key), f"{path} must be a mapping")
            return None
        for name in value:
            if name not in allowed:
                known = ", ".join(sorted(allowed))
                self.error(value.key_mark(name), f"unknown key {path}.{name} (known: {known})")
        return value

    def get(
        self,
        parent: LocatedDict,
        key: str,
        path: str,
        convert: Callable[[Any], T],
        default: T,
    ) -> T:
        if key not in parent or parent[key] is None:
            return default
        try:
            return convert(parent[key])
        except (ValueError, TypeError) as exc:
            self.error(parent.value_mark(key), f"{path}: {exc}")
            return default


def _database(value: Any) -> Path | str:
    """``storage.database``: a ``postgresql://`` URL, checked, or an SQLite file path."""
    text = _string(value)
    if is_postgres_url(text):
        return check_postgres_url(text)
    return Path(text)


def _string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError("expected a string")
    text = str(value)
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"expected a port number 0-65535, got {value!r}")
    return value


def _host(text: str) -> str:
    if text in ("localhost", "*"):
        return "127.0.0.1" if text == "localhost" else "0.0.0.0"
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9.\-]+", text):
            raise ValueError(f"bad host {text!r}") from None
    return text


def _listen(value: Any) -> ListenAddress:
    text = _string(value)
    m = re.fullmatch(r"(udp|tcp|tls):(.+):(\d+)", text.strip(), re.I)
    if not m:
        raise ValueError(f"expected TRANSPORT:HOST:PORT such as udp:0.0.0.0:5060, got {text!r}")
    return ListenAddress(m.group(1).lower(), _host(m.group(2).strip("[]")), _port(int(m.group(3))))


def _host_port(value: Any) -> tuple[str, int]:
    text = _string(value)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {text!r}")
    return _host(host.strip("[]")), _port(int(port))


def parse_port_range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m:
        raise ValueError(f"expected a range such as 20000-29999, got {text!r}")
    low, high = int(m.group(1)), int(m.group(2))
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"range {low}-{high} must lie within 1024-65535, low below high")
    if high - low < 3:
        raise ValueError(f"range {low}-{high} is too small for one call (RTP and RTCP)")
    return low, high


def _string_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return tuple(_string(v) for v in value)


def _api_key_list(value: Any) -> tuple[tuple[str, str | None], ...]:
    """``[KEY, {name: NAME, key: KEY}]``: each key with its name (None when unnamed)."""
    if not isinstance(value, list):
        raise TypeError("expected a list of keys (a key, or {name: NAME, key: KEY})")
    items: list[tuple[str, str | None]] = []
    for i, item in enumerate(value):
        if isinstance(item, dict):
            if set(item) != {"name", "key"}:
                raise ValueError(f"item {i + 1}: a named key is {{name: NAME, key: KEY}}")
            items.append((_string(item["key"]), _string(item["name"])))
        else:
            items.append((_string(item), None))
    return tuple(items)


def _node_name(value: Any) -> str:
    text = _string(value)
    if not NODE_NAME.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a node name: up to 63 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return text


def _optional_path(value: Any) -> Path | None:
    return None if value is None else Path(_string(value))


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise ProblemsError listing every mistake."""
    path = Path(path)
    doc = load_yaml_file(str(path))
    file = str(path)
    if doc is None:
        doc = LocatedDict()
    if not isinstance(doc, LocatedDict):
        raise ProblemsError([Problem(file, Mark(1, 1), "the config must be a YAML mapping")])
    c = _Checker(file)
    top = {"sip", "rtp", "http", "storage", "trunks", "users", "scenarios_dir", "routes"}
    top |= {"webhooks", "data_dir", "limits", "smtp", "node"}
    for key in doc:
        if key not in top:
            c.error(doc.key_mark(key), f"unknown key {key} (known: {', '.join(sorted(top))})")

    sip = SipConfig()
    sip_keys = {
        "listen",
        "public_address",
        "user_agent",
        "trusted_networks",
        "realm",
        "digest_algorithms",
        "tls",
    }
    if (s := c.section(doc, "sip", sip_keys, "sip")) is not None:
        listen: tuple[ListenAddress, ...] = sip.listen
        if "listen" in s:
            items = s["listen"]
            if not isinstance(items, LocatedList) or not items:
                c.error(s.value_mark("listen"), "sip.listen must be a non-empty list")
            else:
                parsed = []
                for i, item in enumerate(items):
                    try:
                        parsed.append(_listen(item))
                    except (ValueError, TypeError) as exc:
                        c.error(items.item_mark(i), f"sip.listen[{i}]: {exc}")
                listen = tuple(parsed) or listen
        public = c.get(s, "public_address", "sip.public_address", _string, "auto")
        sip = SipConfig(
            listen=listen,
            public_address=None if public == "auto" else _checked_host(c, s, public),
            user_agent=c.get(s, "user_agent", "sip.user_agent", _string, sip.user_agent),
            trusted_networks=_networks(c, s),
            realm=c.get(s, "realm", "sip.realm", _string, sip.realm),
            digest_algorithms=c.get(
                s, "digest_algorithms", "sip.digest_algorithms", _algorithms, sip.digest_algorithms
            ),
            tls=_tls(c, s, path.parent),
        )

    rtp = RtpConfig()
    rtp_keys = {"ports", "codecs", "jitter_buffer_ms", "learn_source", "srtp", "relay_workers"}
    if (r := c.section(doc, "rtp", rtp_keys, "rtp")) is not None:
        low, high = c.get(
            r, "ports", "rtp.ports", lambda v: parse_port_range(_string(v)), (20000, 29999)
        )
        codecs = c.get(r, "codecs", "rtp.codecs", _codec_list, rtp.codecs)
        jitter = c.get(r, "jitter_buffer_ms", "rtp.jitter_buffer_ms", _jitter, 60)
        learn = c.get(r, "learn_source", "rtp.learn_source", _learn_mode, rtp.learn_source)
        srtp = c.get(r, "srtp", "rtp.srtp", _srtp_mode, rtp.srtp)
        workers = c.get(r, "relay_workers", "rtp.relay_workers", _relay_workers, rtp.relay_workers)
        rtp = RtpConfig(low, high, codecs, jitter, learn, srtp, workers)

    limits = _limits(c, doc)
    smtp = _smtp(c, doc)
    node = NodeConfig()
    if (n := c.section(doc, "node", {"name", "lease"}, "node")) is not None:
        node = NodeConfig(
            c.get(n, "name", "node.name", _node_name, node.name),
            c.get(n, "lease", "node.lease", _lease, node.lease),
        )

    http = HttpConfig()
    if (h := c.section(doc, "http", {"listen", "api_keys", "access_log"}, "http")) is not None:
        host, port = c.get(h, "listen", "http.listen", _host_port, (http.host, http.port))
        no_keys: tuple[tuple[str, str | None], ...] = ()
        items = c.get(h, "api_keys", "http.api_keys", _api_key_list, no_keys)
        access_log = c.get(h, "access_log", "http.access_log", _optional_path, None)
        http = HttpConfig(
            host,
            port,
            tuple(key for key, _ in items),
            tuple((key, name) for key, name in items if name is not None),
            access_log,
        )

    storage = StorageConfig()
    st = c.section(doc, "storage", {"database", "recordings", "cache", "audio_files"}, "storage")
    if st is not None:
        storage = StorageConfig(
            database=c.get(st, "database", "storage.database", _database, StorageConfig.database),
            recordings=Path(
                c.get(st, "recordings", "storage.recordings", _string, "data/recordings")
            ),
            cache=Path(c.get(st, "cache", "storage.cache", _string, "data/cache")),
            audio_files=Path(
                c.get(st, "audio_files", "storage.audio_files", _string, "data/audio-files")
            ),
        )

    trunks = _read_list(
        c, doc, "trunks", lambda c, item, where: _trunk(c, item, where, path.parent)
    )
    users = _read_list(c, doc, "users", _user)
    webhooks = _read_list(c, doc, "webhooks", _webhook)
    _check_unique(c, doc, "trunks", "name", "trunk name")
    _check_unique(c, doc, "users", "username", "user name")

    scenarios_dir = path.parent / c.get(doc, "scenarios_dir", "scenarios_dir", _string, "scenarios")
    folder_missing = "scenarios_dir" in doc and not scenarios_dir.is_dir()
    if folder_missing:
        c.error(doc.value_mark("scenarios_dir"), f"scenarios_dir: no folder {scenarios_dir}")
    # With the folder missing, every route would also say "no scenario": one problem is enough.
    routes = _routes(c, doc, scenarios_dir, check_files=not folder_missing)
    # Like scenarios_dir, relative to this file's folder, so a config written by
    # `mediaserver init DIR` keeps its data in DIR whatever the working folder.
    data_dir = Path(".")
    if "data_dir" in doc and doc["data_dir"] is not None:
        data_dir = path.parent / c.get(doc, "data_dir", "data_dir", _string, ".")

    if c.problems:
        raise ProblemsError(c.problems)
    return Config(
        path=path,
        sip=sip,
        rtp=rtp,
        limits=limits,
        http=http,
        storage=storage,
        trunks=trunks,
        users=users,
        webhooks=webhooks,
        scenarios_dir=scenarios_dir,
        routes=routes,
        data_dir=data_dir,
        smtp=smtp,
        node=node,
    )


SMTP_KEYS = {"host", "port", "security", "username", "password", "from", "timeout"}


def _smtp(c: _Checker, doc: LocatedDict) -> SmtpConfig | None:
    """The ``smtp:`` section; None when absent. ``host`` and ``from`` are required."""
    s = c.section(doc, "smtp", SMTP_KEYS, "smtp")
    if s is None:
        return None
    host = _require(c, s, "host", "smtp")
    sender = _require(c, s, "from", "smtp")
    if sender is not None and not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", sender):
        c.error(s.value_mark("from"), f"smtp.from: expected an address such as "
                f"voicemail@example.com, got {sender!r}")  # fmt: skip
    security = c.get(s, "security", "smtp.security", _smtp_security, "starttls")
    port = c.get(s, "port", "smtp.port", _port, 465 if security == "tls" else 587)
    username = c.get(s, "username", "smtp.username", _string, None)
    password = c.get(s, "password", "smtp.password", _string, None)
    if (username is None) != (password is None):
        c.error(s.mark, "smtp: username and password go together (give both, or neither)")
    timeout = c.get(s, "timeout", "smtp.timeout", _smtp_timeout, 30.0)
    if host is None or sender is None:
        return None
    return SmtpConfig(host, sender, port, security, username, password, timeout)


def _smtp_security(value: Any) -> str:
    if value not in SMTP_SECURITY:
        raise ValueError(f"expected none, starttls or tls, got {value!r}")
    return str(value)


def _smtp_timeout(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 300:
        raise ValueError(f"expected 1 to 300 seconds, got {value!r}")
    return float(value)


LIMIT_KEYS = {"per_source", "per_user", "global_invites", "block_after", "block_seconds",
              "max_sources"}  # fmt: skip


def _limits(c: _Checker, doc: LocatedDict) -> LimitsConfig:
    default = LimitsConfig()
    s = c.section(doc, "limits", LIMIT_KEYS, "limits")
    if s is None:
        return default
    rates = {}
    for key in ("per_source", "per_user", "global_invites"):
        fallback: Rate = getattr(default, key)
        section = c.section(s, key, {"rate", "burst"}, f"limits.{key}")
        if section is None:
            rates[key] = fallback
            continue
        rate = c.get(section, "rate", f"limits.{key}.rate", _per_second, fallback.rate)
        burst = c.get(section, "burst", f"limits.{key}.burst", _burst, max(1.0, rate * 3))
        rates[key] = Rate(rate, burst)
    return LimitsConfig(
        per_source=rates["per_source"],
        per_user=rates["per_user"],
        global_invites=rates["global_invites"],
        block_after=c.get(s, "block_after", "limits.block_after", _count, default.block_after),
        block_seconds=c.get(
            s, "block_seconds", "limits.block_seconds", _seconds, default.block_seconds
        ),
        max_sources=c.get(s, "max_sources", "limits.max_sources", _sources, default.max_sources),
    )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _per_second(value: Any) -> float:
    rate = _number(value)
    if not 0 <= rate <= 1_000_000:
        raise ValueError(f"expected requests a second, 0 (no limit) to 1000000, got {value!r}")
    return rate


def _burst(value: Any) -> float:
    burst = _number(value)
    if not 1 <= burst <= 1_000_000:
        raise ValueError(f"expected a burst of 1 to 1000000 requests, got {value!r}")
    return burst


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ValueError(f"expected a whole number 0-1000000, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    seconds = _number(value)
    if not 0 <= seconds <= 86_400:
        raise ValueError(f"expected seconds, 0 (never block) to 86400, got {value!r}")
    return seconds


def _lease(value: Any) -> float:
    seconds = _number(value)
    if not 1 <= seconds <= 3600:
        raise ValueError(f"expected seconds, 1 to 3600, got {value!r}")
    return seconds


def _sources(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000_000:
        raise ValueError(f"expected a whole number 1-10000000, got {value!r}")
    return value


def _checked_host(c: _Checker, s: LocatedDict, text: str) -> str | None:
    try:
        return _host(text)
    except ValueError as exc:
        c.error(s.value_mark("public_address"), f"sip.public_address: {exc}")
        return None


def _networks(
    c: _Checker, s: LocatedDict
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if "trusted_networks" not in s or s["trusted_networks"] is None:
        return ()
    items = s["trusted_networks"]
    if not isinstance(items, LocatedList):
        c.error(s.value_mark("trusted_networks"), "sip.trusted_networks must be a list")
        return ()
    out = []
    for i, item in enumerate(items):
        try:
            out.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            c.error(
                items.item_mark(i),
                f"sip.trusted_networks[{i}]: expected an address or network such as "
                f"127.0.0.0/8, got {item!r}",
            )
    return tuple(out)


DIGEST_ALGORITHMS = ("SHA-256", "MD5")


def _algorithms(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    if not names:
        raise ValueError("at least one algorithm is needed")
    out = []
    for name in names:
        upper = name.upper()
        if upper not in DIGEST_ALGORITHMS:
            raise ValueError(f"unknown digest algorithm {name!r} (supported: SHA-256, MD5)")
        out.append(upper)
    return tuple(dict.fromkeys(out))


def _codec_list(value: Any) -> tuple[str, ...]:
    names = _string_list(value)
    if not names:
        raise ValueError("at least one codec is needed")
    out = []
    spelt = {codec.upper(): codec for codec in SUPPORTED_CODECS}
    for name in names:
        known = spelt.get(name.upper())
        if known is None:
            raise ValueError(f"unknown codec {name!r} (supported: {', '.join(SUPPORTED_CODECS)})")
        out.append(known)
    wideband = [name for name in out if name in ("G722", "opus")]
    # The codec library is imported with the first wideband leg: say now if it is missing.
    if wideband and importlib.util.find_spec("av") is None:
        raise ValueError(
            f"{' and '.join(wideband)} {'needs' if len(wideband) == 1 else 'need'} the "
            "Python package av (PyAV: pip install 'av>=14'), "
            "which is not installed; remove them or install it"
        )
    return tuple(dict.fromkeys(out))


def _jitter(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 20 <= value <= 1000:
        raise ValueError(f"expected milliseconds between 20 and 1000, got {value!r}")
    return value


def _relay_workers(value: Any) -> int:
    if value == "auto":
        return auto_relay_workers()
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise ValueError(f"expected auto or a number of processes from 0 to 64, got {value!r}")
    return value


def _learn_mode(value: Any) -> LearnMode:
    modes = [mode.value for mode in LearnMode]
    if isinstance(value, bool):  # YAML 1.1 reads a bare on/off/yes/no as a boolean
        raise ValueError(f"expected one of {', '.join(modes)}, got the boolean {value}")
    if not isinstance(value, str) or value not in modes:
        raise ValueError(f"expected one of {', '.join(modes)}, got {value!r}")
    return LearnMode(value)


def _read_list(
    c: _Checker, doc: LocatedDict, key: str, read: Callable[[_Checker, LocatedDict, str], T | None]
) -> tuple[T, ...]:
    if key not in doc or doc[key] is None:
        return ()
    items = doc[key]
    if not isinstance(items, LocatedList):
        c.error(doc.value_mark(key), f"{key} must be a list")
        return ()
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, LocatedDict):
            c.error(items.item_mark(i), f"{key}[{i}] must be a mapping")
            continue
        value = read(c, item, f"{key}[{i}]")
        if value is not None:
            out.append(value)
    return tuple(out)


def _require(c: _Checker, item: LocatedDict, key: str, path: str) -> str | None:
    if key not in item:
        c.error(item.mark, f"{path}: missing required key {key}")
        return None
    if item[key] is None:
        # "name:" with nothing after it loads as null; without this the entry would vanish.
        c.error(item.value_mark(key), f"{path}.{key}: a value is required")
        return None
    return c.get(item, key, f"{path}.{key}", _string, None)


def _unknown_keys(c: _Checker, item: LocatedDict, allowed: set[str], path: str) -> None:
    for name in item:
        if name not in allowed:
            c.error(
                item.key_mark(name),
                f"unknown key {path}.{name} (known: {', '.join(sorted(allowed))})",
            )


def _trunk(c: _Checker, item: LocatedDict, path: str, folder: Path) -> TrunkConfig | None:
    _unknown_keys(
        c,
        item,
        {"name", "uri", "username", "password", "register", "from_user", "keepalive"}
        | {"tls_verify", "tls_ca_file", "tls_fingerprint", "srtp"},
        path,
    )
    name = _require(c, item, "name", path)
    uri = _require(c, item, "uri", path)
    if uri is not None and not re.match(r"^sips?:", uri, re.I):
        c.error(item.value_mark("uri"), f"{path}.uri: expected a sip: URI, got {uri!r}")
    register = c.get(item, "register", f"{path}.register", _bool, False)
    username = c.get(item, "username", f"{path}.username", _string, None)
    password = c.get(item, "password", f"{path}.password", _string, None)
    # RFC 3261 22.4: answering the digest challenge to REGISTER needs both credentials.
    if register and (username is None or password is None):
        c.error(item.key_mark("register"), f"{path}: register needs a username and password")
    if name is None or uri is None:
        return None
    return TrunkConfig(
        name=name,
        uri=uri,
        username=username,
        password=password,
        register=register,
        from_user=c.get(item, "from_user", f"{path}.from_user", _string, None),
        keepalive=c.get(item, "keepalive", f"{path}.keepalive", _keepalive, 30.0),
        tls_verify=c.get(item, "tls_verify", f"{path}.tls_verify", _bool, True),
        tls_ca_file=_existing_file(c, item, "tls_ca_file", f"{path}.tls_ca_file", folder),
        tls_fingerprint=c.get(
            item, "tls_fingerprint", f"{path}.tls_fingerprint", _fingerprint, None
        ),
        srtp=c.get(item, "srtp", f"{path}.srtp", _srtp_mode, None),
    )


def _tls(c: _Checker, sip: LocatedDict, folder: Path) -> TlsConfig:
    """``sip.tls``; paths relative to the config file's folder, checked to exist."""
    t = c.section(sip, "tls", {"certificate", "key", "ca_file"}, "sip.tls")
    if t is None:
        return TlsConfig()
    paths = {
        name: _existing_file(c, t, name, f"sip.tls.{name}", folder)
        for name in ("certificate", "key", "ca_file")
    }
    if ("certificate" in t) != ("key" in t):
        given = "certificate" if "certificate" in t else "key"
        c.error(t.key_mark(given), "sip.tls: certificate and key go together (or none)")
    return TlsConfig(paths["certificate"], paths["key"], paths["ca_file"])


def _existing_file(
    c: _Checker, section: LocatedDict, key: str, where: str, folder: Path
) -> Path | None:
    value = c.get(section, key, where, _optional_path, None)
    if value is None:
        return None
    path = folder / value
    if not path.is_file():
        c.error(section.value_mark(key), f"{where}: no file {path}")
    return path


def _fingerprint(value: Any) -> str:
    """``AB:CD:...`` or ``abcd...``: a SHA-256 fingerprint, as lower-case hex."""
    text = _string(value)
    digits = text.replace(":", "").strip().lower()
    if len(digits) != 64 or any(ch not in "0123456789abcdef" for ch in digits):
        raise ValueError(
            f"expected a SHA-256 fingerprint (64 hex digits, colons allowed), got {text!r}"
        )
    return digits


SRTP_MODES = ("off", "optional", "required", "dtls")


def _srtp_mode(value: Any) -> str:
    if value is False:  # YAML 1.1 reads an unquoted `off` as false
        return "off"
    if value is True:
        raise ValueError(f"expected one of {', '.join(SRTP_MODES)} (an unquoted yes/on is true)")
    text = _string(value).lower()
    if text not in SRTP_MODES:
        raise ValueError(f"expected one of {', '.join(SRTP_MODES)}, got {value!r}")
    return text


def _keepalive(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected seconds (0 to disable)")
    if value != 0 and not 5 <= value <= 3600:
        raise ValueError(f"expected 0 or 5 to 3600 seconds, got {value!r}")
    return float(value)


def _user(c: _Checker, item: LocatedDict, path: str) -> UserConfig | None:
    _unknown_keys(c, item, {"username", "password", "srtp"}, path)
    username = _require(c, item, "username", path)
    password = _require(c, item, "password", path)
    srtp = c.get(item, "srtp", f"{path}.srtp", _srtp_mode, None)
    if username is None or password is None:
        return None
    return UserConfig(username, password, srtp)


def _webhook(c: _Checker, item: LocatedDict, path: str) -> WebhookConfig | None:
    _unknown_keys(c, item, {"url", "events", "secret"}, path)
    url = _require(c, item, "url", path)
    if url is not None and not re.match(r"^https?://", url):
        c.error(item.value_mark("url"), f"{path}.url: expected an http(s) URL, got {url!r}")
    every: tuple[str, ...] = ("*",)
    events = c.get(item, "events", f"{path}.events", _string_list, every)
    if url is None:
        return None
    return WebhookConfig(url, events, c.get(item, "secret", f"{path}.secret", _string, None))


def _check_unique(c: _Checker, doc: LocatedDict, key: str, field: str, what: str) -> None:
    """Report each entry of the list ``key`` whose ``field`` repeats an earlier one, there."""
    items = doc.get(key)
    if not isinstance(items, LocatedList):
        return
    seen: dict[str, Mark] = {}
    for i, item in enumerate(items):
        if not isinstance(item, LocatedDict):
            continue
        value = item.get(field)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue  # missing or of the wrong type: reported already
        name, mark = str(value), item.value_mark(field)
        if name in seen:
            first = seen[name].line
            c.error(mark, f"{key}[{i}].{field}: duplicate {what} {name!r} (first at line {first})")
        else:
            seen[name] = mark


def scenario_file(scenarios_dir: Path, name: str) -> Path | None:
    """The file of a scenario name in the scenarios folder, if there is one."""
    for suffix in SCENARIO_SUFFIXES:
        candidate = scenarios_dir / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _routes(
    c: _Checker, doc: LocatedDict, scenarios_dir: Path, *, check_files: bool = True
) -> dict[str, str]:
    if "routes" not in doc or doc["routes"] is None:
        return {}
    routes = doc["routes"]
    if not isinstance(routes, LocatedDict):
        c.error(doc.value_mark("routes"), "routes must be a mapping of number or user to scenario")
        return {}
    out: dict[str, str] = {}
    firsts: dict[str, Mark] = {}
    for item, target in routes.items():
        # The number as written: YAML would read +33199001234 as an int and drop the "+".
        key = routes.key_text(item)
        if key in firsts:
            first = firsts[key].line
            c.error(routes.key_mark(item), f"routes.{key}: duplicate route (first at line {first})")
            continue
        firsts[key] = routes.key_mark(item)
        if not isinstance(target, str) or not target.strip():
            c.error(routes.value_mark(item), f"routes.{key}: expected a scenario name")
            continue
        prefix, _, url = target.partition(":")
        if prefix == "callflow" and url:
            # SPEC section 6: the Voxology Call Flow Loop at URL (mediaserver.callflow.route).
            if not CALLFLOW_URL.fullmatch(url.strip()):
                c.error(
                    routes.value_mark(item),
                    f"routes.{key}: callflow: needs an http:// or https:// URL, got {url!r}",
                )
                continue
            out[key] = f"callflow:{url.strip()}"
            continue
        if prefix == "realtime" and url:
            # Callr v1 REALTIME10: an app drives the call command by command (mediaserver.realtime).
            if not CALLFLOW_URL.fullmatch(url.strip()):
                c.error(
                    routes.value_mark(item),
                    f"routes.{key}: realtime: needs an http:// or https:// URL, got {url!r}",
                )
                continue
            out[key] = f"realtime:{url.strip()}"
            continue
        if prefix == "call-control" and url:
            # SPEC section 5: park for a Call Control application (mediaserver.callcontrol).
            target_text = url.strip()
            if not (CALLFLOW_URL.fullmatch(target_text) or APPLICATION_ID.fullmatch(target_text)):
                c.error(
                    routes.value_mark(item),
                    f"routes.{key}: call-control: needs an http:// or https:// URL or a Call "
                    f"Control application id, got {url!r}",
                )
                continue
            out[key] = f"call-control:{target_text}"
            continue
        if target.strip() == RECORDING_LINE:
            # The recording line of POST /api/audio-files/{sid}/phone (mediaserver.audio_recorder).
            out[key] = RECORDING_LINE
            continue
        if not SCENARIO_NAME.fullmatch(target):
            # A name, not a path: nothing outside the scenarios folder can be routed to.
            c.error(
                routes.value_mark(item),
                f"routes.{key}: {target!r} is not a scenario name (letters, digits, '-', '_')",
            )
            continue
        if check_files and scenario_file(scenarios_dir, target) is None:
            c.error(
                routes.value_mark(item),
                f"routes.{key}: no scenario {target!r} in {scenarios_dir}",
            )
            continue
        out[key] = target
    return out


def with_overrides(
    config: Config,
    *,
    sip_port: int | None = None,
    http_port: int | None = None,
    rtp_ports: str | None = None,
    data_dir: str | Path | None = None,
    node_name: str | None = None,
) -> Config:
    """Apply the command-line flags of SPEC section 1 (ValueError on bad values)."""
    sip, rtp, http = config.sip, config.rtp, config.http
    if sip_port is not None:
        _port(sip_port)
        # TLS cannot share TCP's port: it takes the next one (5060 and 5061, RFC 3261 19.1.2).
        tls_port = _port(sip_port + 1) if sip_port else 0
        sip = replace(
            sip,
            listen=tuple(
                replace(a, port=tls_port if a.transport == "tls" else sip_port) for a in sip.listen
            ),
        )
    if http_port is not None:
        http = replace(http, port=_port(http_port))
    if rtp_ports is not None:
        low, high = parse_port_range(rtp_ports)
        rtp = replace(rtp, port_min=low, port_max=high)
    out = replace(config, sip=sip, rtp=rtp, http=http)
    if data_dir is not None:
        out = replace(out, data_dir=Path(data_dir))
    if node_name is not None:
        out = replace(out, node=replace(out.node, name=_node_name(node_name)))
    return out
