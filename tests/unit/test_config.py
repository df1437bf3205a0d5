"""The server configuration file (SPEC section 2): loading, validation, overrides, paths."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mediaserver.config import (
    Config,
    LimitsConfig,
    ListenAddress,
    NodeConfig,
    SmtpConfig,
    StorageConfig,
    auto_relay_workers,
    host_name,
    load_config,
    parse_port_range,
    scenario_file,
    with_overrides,
)
from mediaserver.media.latching import LearnMode
from mediaserver.yamlsource import ProblemsError

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO / "configs" / "default.yaml"


def write_config(folder: Path, text: str, scenarios: tuple[str, ...] = ("echo",)) -> Path:
    """A config file in ``folder`` with a ``scenarios`` folder holding the named scenarios."""
    (folder / "scenarios").mkdir(exist_ok=True)
    for name in scenarios:
        (folder / "scenarios" / f"{name}.yaml").write_text("name: x\n", encoding="utf-8")
    path = folder / "server.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(folder: Path, text: str, scenarios: tuple[str, ...] = ("echo",)) -> list[str]:
    """Every problem of a config, as printed, with the file name shortened to ``F``."""
    path = write_config(folder, text, scenarios)
    with pytest.raises(ProblemsError) as info:
        load_config(path)
    return [str(p).replace(str(path), "F", 1) for p in info.value.problems]


def loads(folder: Path, text: str, scenarios: tuple[str, ...] = ("echo",)) -> Config:
    return load_config(write_config(folder, text, scenarios))


# -- the default config ------------------------------------------------------------


def test_limits_are_read_with_defaults_for_what_is_left_out(tmp_path: Path) -> None:
    config = loads(tmp_path, "limits:\n  per_source: {rate: 5}\n  global_invites: {rate: 0}\n"
                   "  block_after: 0\n  block_seconds: 7.5\n")  # fmt: skip
    limits = config.limits
    assert (limits.per_source.rate, limits.per_source.burst) == (5, 15)
    assert limits.global_invites.rate == 0  # no global limit
    assert limits.per_user == LimitsConfig().per_user
    assert (limits.block_after, limits.block_seconds, limits.max_sources) == (0, 7.5, 10_000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("limits: 5\n", "F:1:9: limits must be a mapping"),
        ("limits:\n  flood: 1\n", "F:2:3: unknown key limits.flood (known: block_after, "
         "block_seconds, global_invites, max_sources, per_source, per_user)"),
        ("limits:\n  per_user: {rate: 1, size: 2}\n",
         "F:2:23: unknown key limits.per_user.size (known: burst, rate)"),
        ("limits:\n  per_source: {rate: -1}\n", "F:2:22: limits.per_source.rate: expected "
         "requests a second, 0 (no limit) to 1000000, got -1"),
        ("limits:\n  per_source: {rate: fast}\n",
         "F:2:22: limits.per_source.rate: expected a number, got 'fast'"),
        ("limits:\n  global_invites: {rate: 10, burst: 0.5}\n", "F:2:37: "
         "limits.global_invites.burst: expected a burst of 1 to 1000000 requests, got 0.5"),
        ("limits:\n  block_after: 1.5\n",
         "F:2:16: limits.block_after: expected a whole number 0-1000000, got 1.5"),
        ("limits:\n  block_seconds: -1\n",
         "F:2:18: limits.block_seconds: expected seconds, 0 (never block) to 86400, got -1"),
        ("limits:\n  max_sources: 0\n",
         "F:2:16: limits.max_sources: expected a whole number 1-10000000, got 0"),
    ],
)  # fmt: skip
def test_bad_limits_are_named(tmp_path: Path, text: str, message: str) -> None:
    assert problems_of(tmp_path, text) == [message]


def test_the_default_config_loads_with_the_documented_values() -> None:
    config = load_config(DEFAULT)
    assert config.path == DEFAULT
    assert config.sip.listen == (
        ListenAddress("udp", "0.0.0.0", 5060),
        ListenAddress("tcp", "0.0.0.0", 5060),
    )
    assert [str(a) for a in config.sip.listen] == ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]
    assert config.sip.public_address is None  # "auto"
    assert config.sip.user_agent == "mediaserver"
    assert (config.rtp.port_min, config.rtp.port_max) == (20000, 29999)
    assert config.rtp.codecs == ("PCMU", "PCMA")
    assert config.rtp.jitter_buffer_ms == 60
    assert config.limits == LimitsConfig()  # written out in full, with the code's defaults
    assert config.rtp.learn_source is LearnMode.STREAM
    assert (config.http.host, config.http.port, config.http.api_keys) == ("127.0.0.1", 8080, ())
    assert config.storage == StorageConfig(
        Path("data/mediaserver.db"), Path("data/recordings"), Path("data/cache")
    )
    assert config.scenarios_dir == REPO / "configs" / "scenarios"
    assert config.routes == {
        "echo": "echo",
        "ivr": "ivr",
        "welcome": "welcome",
        "queue": "queue",
        "agent": "agent",
        "forward": "forward",
        "voicemail": "voicemail",
        "conference": "conference",
        "*": "welcome",
    }
    for name in set(config.routes.values()):
        assert scenario_file(config.scenarios_dir, name) is not None
    assert config.data_dir == Path(".")


def test_an_empty_config_gives_the_defaults(tmp_path: Path) -> None:
    config = loads(tmp_path, "# nothing here\n")
    assert config.sip.listen[0] == ListenAddress("udp", "0.0.0.0", 5060)
    assert config.rtp.codecs == ("PCMU", "PCMA")
    assert config.routes == {}
    assert config.scenarios_dir == tmp_path / "scenarios"


def test_every_key_of_every_section_is_read(tmp_path: Path) -> None:
    config = loads(
        tmp_path,
        """\
sip:
  listen: ["UDP:127.0.0.1:5070", "tcp:[::1]:5071", "udp:localhost:5072", "udp:*:0"]
  public_address: 203.0.113.7
  user_agent: my-pbx
rtp:
  ports: " 30000 - 30100 "
  codecs: [pcma, PCMU, PCMA]
  jitter_buffer_ms: 120
  learn_source: strict
http:
  listen: "[::1]:9090"
  api_keys: [k1, 1234]
storage:
  database: db/main.db
  recordings: /var/rec
  cache: cache
trunks:
  - name: carrier
    uri: sip:sip.example.net:5060;transport=udp
    username: 1001
    password: secret
    register: true
    from_user: "+33199001234"
  - {name: other, uri: "sips:b.example.net"}
users:
  - {username: alice, password: wonderland}
webhooks:
  - url: http://127.0.0.1:9000/events
    events: ["v2.call.*", "call.*"]
    secret: hmac-secret
  - url: https://hooks.example.com/x
scenarios_dir: scenarios
routes:
  "+33199001234": echo
  +33100: echo
  1001: echo
  echo: echo
  "*": echo
""",
    )
    assert [str(a) for a in config.sip.listen] == [
        "udp:127.0.0.1:5070",
        "tcp:::1:5071",
        "udp:127.0.0.1:5072",
        "udp:0.0.0.0:0",
    ]
    assert config.sip.public_address == "203.0.113.7"
    assert config.sip.user_agent == "my-pbx"
    assert (config.rtp.port_min, config.rtp.port_max) == (30000, 30100)
    assert config.rtp.codecs == ("PCMA", "PCMU")  # upper-cased, duplicates dropped, order kept
    assert config.rtp.jitter_buffer_ms == 120
    assert config.rtp.learn_source is LearnMode.STRICT
    assert (config.http.host, config.http.port) == ("::1", 9090)
    assert config.http.api_keys == ("k1", "1234")
    assert config.storage == StorageConfig(Path("db/main.db"), Path("/var/rec"), Path("cache"))
    carrier, other = config.trunks
    assert (carrier.name, carrier.username, carrier.password) == ("carrier", "1001", "secret")
    assert carrier.register and carrier.from_user == "+33199001234"
    assert carrier.uri == "sip:sip.example.net:5060;transport=udp"
    assert (other.name, other.register, other.username) == ("other", False, None)
    assert [(u.username, u.password) for u in config.users] == [("alice", "wonderland")]
    first, second = config.webhooks
    assert first.events == ("v2.call.*", "call.*") and first.secret == "hmac-secret"
    assert second.events == ("*",) and second.secret is None
    # Route keys are the numbers as written: YAML reads +33100 as an int, the "+" is kept.
    assert config.routes == {
        "+33199001234": "echo",
        "+33100": "echo",
        "1001": "echo",
        "echo": "echo",
        "*": "echo",
    }


# -- validation, section by section ------------------------------------------------


def test_unknown_top_level_keys_list_the_known_ones(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "sip: {}\ncolour: red\n") == [
        "F:2:1: unknown key colour (known: data_dir, http, limits, node, routes, rtp, "
        "scenarios_dir, sip, smtp, storage, trunks, users, webhooks)"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sip:\n  colour: red\n",
            "F:2:3: unknown key sip.colour "
            "(known: digest_algorithms, listen, public_address, realm, "
            "tls, trusted_networks, user_agent)",
        ),
        (
            "rtp:\n  colour: red\n",
            "F:2:3: unknown key rtp.colour "
            "(known: codecs, jitter_buffer_ms, learn_source, ports, relay_workers, srtp)",
        ),
        (
            "http:\n  colour: red\n",
            "F:2:3: unknown key http.colour (known: access_log, api_keys, listen)",
        ),
        (
            "storage:\n  colour: red\n",
            "F:2:3: unknown key storage.colour (known: audio_files, cache, database, recordings)",
        ),
        (
            "trunks:\n  - {name: a, uri: 'sip:a', colour: red}\n",
            "F:2:29: unknown key trunks[0].colour (known: from_user, keepalive, name, password, "
            "register, srtp, tls_ca_file, tls_fingerprint, tls_verify, uri, username)",
        ),
        (
            "users:\n  - {username: a, password: b, colour: red}\n",
            "F:2:32: unknown key users[0].colour (known: password, srtp, username)",
        ),
        (
            "webhooks:\n  - {url: 'http://x', colour: red}\n",
            "F:2:23: unknown key webhooks[0].colour (known: events, secret, url)",
        ),
    ],
)
def test_unknown_keys_in_each_section(tmp_path: Path, text: str, message: str) -> None:
    assert problems_of(tmp_path, text) == [message]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip: [udp]\n", "F:1:6: sip must be a mapping"),
        ("rtp: 5\n", "F:1:6: rtp must be a mapping"),
        ("http: on\n", "F:1:7: http must be a mapping"),
        ("storage: x\n", "F:1:10: storage must be a mapping"),
        ("trunks: {name: a}\n", "F:1:9: trunks must be a list"),
        ("users: alice\n", "F:1:8: users must be a list"),
        ("webhooks: http://x\n", "F:1:11: webhooks must be a list"),
        ("trunks: [carrier]\n", "F:1:10: trunks[0] must be a mapping"),
        ("routes: [echo]\n", "F:1:9: routes must be a mapping of number or user to scenario"),
        ("sip:\n  listen: udp:0.0.0.0:5060\n", "F:2:11: sip.listen must be a non-empty list"),
        ("sip:\n  listen: []\n", "F:2:11: sip.listen must be a non-empty list"),
        ("sip:\n  user_agent: [a]\n", "F:2:15: sip.user_agent: expected a string"),
        ("sip:\n  user_agent: '  '\n", "F:2:15: sip.user_agent: must not be empty"),
        ("rtp:\n  codecs: PCMU\n", "F:2:11: rtp.codecs: expected a list"),
        ("rtp:\n  codecs: []\n", "F:2:11: rtp.codecs: at least one codec is needed"),
        (
            "rtp:\n  jitter_buffer_ms: 5\n",
            "F:2:21: rtp.jitter_buffer_ms: expected milliseconds between 20 and 1000, got 5",
        ),
        (
            "rtp:\n  jitter_buffer_ms: true\n",
            "F:2:21: rtp.jitter_buffer_ms: expected milliseconds between 20 and 1000, got True",
        ),
        (
            "http:\n  api_keys: key\n",
            "F:2:13: http.api_keys: expected a list of keys (a key, or {name: NAME, key: KEY})",
        ),
        (
            "rtp:\n  relay_workers: 100\n",
            "F:2:18: rtp.relay_workers: expected auto or a number of processes from 0 to 64, "
            "got 100",
        ),
        (
            "rtp:\n  relay_workers: true\n",
            "F:2:18: rtp.relay_workers: expected auto or a number of processes from 0 to 64, "
            "got True",
        ),
        (
            "rtp:\n  learn_source: any\n",
            "F:2:17: rtp.learn_source: expected one of strict, stream, first, got 'any'",
        ),
        (
            "rtp:\n  learn_source: off\n",  # YAML 1.1 reads a bare off as false
            "F:2:17: rtp.learn_source: expected one of strict, stream, first,"
            " got the boolean False",
        ),
        ("storage:\n  cache: 1.5\n", "F:2:10: storage.cache: expected a string"),
        (
            "storage:\n  database: postgresql://db/\n",
            "F:2:13: storage.database: no database name in 'postgresql://db/';"
            " expected postgresql://user[:password]@host[:port]/database",
        ),
        (
            "storage:\n  database: postgresql://db:99999/ms\n",
            "F:2:13: storage.database: not a PostgreSQL URL (Port out of range 0-65535);"
            " expected postgresql://user[:password]@host[:port]/database",
        ),
        ("scenarios_dir: [a]\n", "F:1:16: scenarios_dir: expected a string"),
        ("sip:\n  public_address: 'a b'\n", "F:2:19: sip.public_address: bad host 'a b'"),
    ],
)
def test_wrong_types_and_values(tmp_path: Path, text: str, message: str) -> None:
    assert problems_of(tmp_path, text) == [message]


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (
            "udp:0.0.0.0",
            "sip.listen[0]: expected TRANSPORT:HOST:PORT such as udp:0.0.0.0:5060, "
            "got 'udp:0.0.0.0'",
        ),
        (
            "sctp:0.0.0.0:5061",
            "sip.listen[0]: expected TRANSPORT:HOST:PORT such as udp:0.0.0.0:5060, "
            "got 'sctp:0.0.0.0:5061'",
        ),
        ("udp:0.0.0.0:65536", "sip.listen[0]: expected a port number 0-65535, got 65536"),
        ("udp:bad host:5060", "sip.listen[0]: bad host 'bad host'"),
    ],
)
def test_bad_listen_strings(tmp_path: Path, listen: str, message: str) -> None:
    text = f'sip:\n  listen:\n    - "{listen}"\n'
    assert problems_of(tmp_path, text) == [f"F:3:7: {message}"]


def test_each_bad_listen_entry_is_reported_at_its_item(tmp_path: Path) -> None:
    text = 'sip:\n  listen: ["udp:127.0.0.1:5060", true, "tcp:x:99999"]\n'
    assert problems_of(tmp_path, text) == [
        "F:2:34: sip.listen[1]: expected a string",
        "F:2:40: sip.listen[2]: expected a port number 0-65535, got 99999",
    ]


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("8080", "expected HOST:PORT such as 127.0.0.1:8080, got '8080'"),
        ("127.0.0.1:http", "expected HOST:PORT such as 127.0.0.1:8080, got '127.0.0.1:http'"),
        ("127.0.0.1:70000", "expected a port number 0-65535, got 70000"),
        ("no/host:80", "bad host 'no/host'"),
    ],
)
def test_bad_http_listen(tmp_path: Path, listen: str, message: str) -> None:
    assert problems_of(tmp_path, f'http:\n  listen: "{listen}"\n') == [
        f"F:2:11: http.listen: {message}"
    ]


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ("20000", "expected a range such as 20000-29999, got '20000'"),
        ("a-b", "expected a range such as 20000-29999, got 'a-b'"),
        ("30000-20000", "range 30000-20000 must lie within 1024-65535, low below high"),
        ("1000-2000", "range 1000-2000 must lie within 1024-65535, low below high"),
        ("60000-70000", "range 60000-70000 must lie within 1024-65535, low below high"),
        ("20000-20002", "range 20000-20002 is too small for one call (RTP and RTCP)"),
    ],
)
def test_bad_rtp_port_ranges(tmp_path: Path, ports: str, message: str) -> None:
    assert problems_of(tmp_path, f"rtp:\n  ports: {ports}\n") == [f"F:2:10: rtp.ports: {message}"]


def test_unknown_codecs_are_named_with_the_supported_ones(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "rtp:\n  codecs: [PCMU, G729]\n") == [
        "F:2:11: rtp.codecs: unknown codec 'G729' (supported: PCMU, PCMA, G722, opus)"
    ]


def test_wideband_codecs_are_taken_in_their_sdp_spelling(tmp_path: Path) -> None:
    config = loads(tmp_path, "rtp:\n  codecs: [OPUS, g722, pcmu]\n")
    assert config.rtp.codecs == ("opus", "G722", "PCMU")


def test_wideband_codecs_without_pyav_are_refused_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a)
    )
    assert problems_of(tmp_path, "rtp:\n  codecs: [PCMU, opus]\n") == [
        "F:2:11: rtp.codecs: opus needs the Python package av (PyAV: pip install 'av>=14'), "
        "which is not installed; remove them or install it"
    ]


def test_trunks_need_a_name_and_a_sip_uri(tmp_path: Path) -> None:
    text = """\
trunks:
  - uri: sip:a.example.net
  - name: b
  - name: c
    uri: http://c.example.net
  - name:
    uri: sip:d.example.net
  - name: e
    uri: sip:e.example.net
    register: yes
    username: e
  - name: f
    uri: sip:f.example.net
    register: "yes"
"""
    assert problems_of(tmp_path, text) == [
        "F:2:5: trunks[0]: missing required key name",
        "F:3:5: trunks[1]: missing required key uri",
        "F:5:10: trunks[2].uri: expected a sip: URI, got 'http://c.example.net'",
        "F:6:10: trunks[3].name: a value is required",
        "F:10:5: trunks[4]: register needs a username and password",
        "F:14:15: trunks[5].register: expected true or false",
    ]


def test_users_need_a_username_and_a_password(tmp_path: Path) -> None:
    text = "users:\n  - username: alice\n  - password: x\n  - {username: bob, password: }\n"
    assert problems_of(tmp_path, text) == [
        "F:2:5: users[0]: missing required key password",
        "F:3:5: users[1]: missing required key username",
        "F:4:30: users[2].password: a value is required",
    ]


def test_webhooks_need_an_http_url_and_a_list_of_events(tmp_path: Path) -> None:
    text = "webhooks:\n  - events: [a]\n  - url: ftp://x\n  - url: http://x\n    events: call.*\n"
    assert problems_of(tmp_path, text) == [
        "F:2:5: webhooks[0]: missing required key url",
        "F:3:10: webhooks[1].url: expected an http(s) URL, got 'ftp://x'",
        "F:5:13: webhooks[2].events: expected a list",
    ]


def test_duplicate_trunk_and_user_names_are_reported_at_the_repeat(tmp_path: Path) -> None:
    text = """\
trunks:
  - {name: carrier, uri: "sip:a"}
  - {name: other, uri: "sip:b"}
  - {name: carrier, uri: "sip:c"}
users:
  - {username: alice, password: a}
  - {username: alice, password: b}
  - {username: 1001, password: c}
  - {username: "1001", password: d}
"""
    assert problems_of(tmp_path, text) == [
        "F:4:12: trunks[2].name: duplicate trunk name 'carrier' (first at line 2)",
        "F:7:16: users[1].username: duplicate user name 'alice' (first at line 6)",
        "F:9:16: users[3].username: duplicate user name '1001' (first at line 8)",
    ]


def test_routes_to_missing_scenarios_and_wrong_targets(tmp_path: Path) -> None:
    text = """\
routes:
  echo: echo
  sales: nowhere
  "+331": 42
  support: ""
"""
    folder = tmp_path / "scenarios"
    assert problems_of(tmp_path, text) == [
        f"F:3:10: routes.sales: no scenario 'nowhere' in {folder}",
        "F:4:11: routes.+331: expected a scenario name",
        "F:5:12: routes.support: expected a scenario name",
    ]


def test_call_control_routes_take_a_url_or_an_application_id(tmp_path: Path) -> None:
    text = (
        "routes:\n"
        '  "+33199005678": "call-control:http://127.0.0.1:9000/hooks"\n'
        '  app: "call-control:1293384261075731499"\n'
    )
    config = loads(tmp_path, text, scenarios=())
    assert config.routes == {
        "+33199005678": "call-control:http://127.0.0.1:9000/hooks",
        "app": "call-control:1293384261075731499",
    }
    bad = 'routes:\n  x: "call-control:ftp://nowhere"\n'
    assert problems_of(tmp_path, bad) == [
        "F:2:6: routes.x: call-control: needs an http:// or https:// URL or a Call Control "
        "application id, got 'ftp://nowhere'",
    ]


def test_callflow_routes_take_an_http_url(tmp_path: Path) -> None:
    text = (
        "routes:\n"
        '  "+33199009999": "callflow:http://127.0.0.1:9000/flow"\n'
        '  flow: "callflow:https://app.example.com/voice?x=1"\n'
    )
    config = loads(tmp_path, text, scenarios=())
    assert config.routes == {
        "+33199009999": "callflow:http://127.0.0.1:9000/flow",
        "flow": "callflow:https://app.example.com/voice?x=1",
    }
    bad = 'routes:\n  a: "callflow:ftp://x/flow"\n  b: "callflow:/flow"\n'
    assert problems_of(tmp_path, bad) == [
        "F:2:6: routes.a: callflow: needs an http:// or https:// URL, got 'ftp://x/flow'",
        "F:3:6: routes.b: callflow: needs an http:// or https:// URL, got '/flow'",
    ]


def test_realtime_routes_take_an_http_url(tmp_path: Path) -> None:
    text = 'routes:\n  rt: "realtime:https://user:pw@app.example.com/rt"\n'
    config = loads(tmp_path, text, scenarios=())
    assert config.routes == {"rt": "realtime:https://user:pw@app.example.com/rt"}
    bad = 'routes:\n  a: "realtime:ftp://x/rt"\n'
    assert problems_of(tmp_path, bad) == [
        "F:2:6: routes.a: realtime: needs an http:// or https:// URL, got 'ftp://x/rt'",
    ]


def test_a_route_written_twice_as_number_and_string_is_a_duplicate(tmp_path: Path) -> None:
    text = 'routes:\n  1001: echo\n  "1001": echo\n'
    assert problems_of(tmp_path, text) == ["F:3:3: routes.1001: duplicate route (first at line 2)"]


def test_routes_find_yml_files_too(tmp_path: Path) -> None:
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "menu.yml").write_text("name: menu\n", encoding="utf-8")
    config = loads(tmp_path, "routes:\n  menu: menu\n", scenarios=())
    assert config.routes == {"menu": "menu"}


def test_a_missing_scenarios_dir_is_one_problem(tmp_path: Path) -> None:
    text = "scenarios_dir: nowhere\nroutes:\n  echo: echo\n  ivr: ivr\n"
    assert problems_of(tmp_path, text) == [f"F:1:16: scenarios_dir: no folder {tmp_path}/nowhere"]


def test_routes_are_checked_against_the_default_scenarios_folder(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("routes:\n  echo: echo\n", encoding="utf-8")
    with pytest.raises(ProblemsError) as info:
        load_config(path)
    assert str(info.value) == f"{path}:2:9: routes.echo: no scenario 'echo' in {tmp_path}/scenarios"


def test_a_config_that_is_not_a_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "- sip\n- rtp\n") == ["F:1:1: the config must be a YAML mapping"]


def test_yaml_errors_and_missing_files_are_problems_too(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "sip:\n  listen: [udp\n") == [
        "F:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)"
    ]
    with pytest.raises(ProblemsError) as info:
        load_config(tmp_path / "absent.yaml")
    assert str(info.value).endswith("absent.yaml:1:1: cannot read file: No such file or directory")


# -- every problem at once -----------------------------------------------------------

MANY_MISTAKES = """\
sip:
  listen: ["udp:0.0.0.0:5060", "udp:0.0.0.0"]
  colour: red
rtp:
  ports: 40000-30000
  codecs: [PCMU, G729]
http:
  listen: "127.0.0.1:99999"
trunks:
  - name: carrier
  - name: carrier
    uri: sip:b.example.net
    register: true
users:
  - username: alice
webhooks:
  - url: ftp://x
routes:
  echo: nowhere
  cc: "call-control:ftp://x"
extra: 1
"""


def test_every_mistake_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    assert problems_of(tmp_path, MANY_MISTAKES) == [
        "F:2:32: sip.listen[1]: expected TRANSPORT:HOST:PORT such as udp:0.0.0.0:5060, "
        "got 'udp:0.0.0.0'",
        "F:3:3: unknown key sip.colour "
        "(known: digest_algorithms, listen, public_address, realm, "
        "tls, trusted_networks, user_agent)",
        "F:5:10: rtp.ports: range 40000-30000 must lie within 1024-65535, low below high",
        "F:6:11: rtp.codecs: unknown codec 'G729' (supported: PCMU, PCMA, G722, opus)",
        "F:8:11: http.listen: expected a port number 0-65535, got 99999",
        "F:10:5: trunks[0]: missing required key uri",
        "F:11:11: trunks[1].name: duplicate trunk name 'carrier' (first at line 10)",
        "F:13:5: trunks[1]: register needs a username and password",
        "F:15:5: users[0]: missing required key password",
        "F:17:10: webhooks[0].url: expected an http(s) URL, got 'ftp://x'",
        f"F:19:9: routes.echo: no scenario 'nowhere' in {folder}",
        "F:20:7: routes.cc: call-control: needs an http:// or https:// URL or a Call Control "
        "application id, got 'ftp://x'",
        "F:21:1: unknown key extra (known: data_dir, http, limits, node, routes, rtp, "
        "scenarios_dir, sip, smtp, storage, trunks, users, webhooks)",
    ]


# -- overrides -------------------------------------------------------------------


def test_sip_port_replaces_every_listen_port() -> None:
    config = with_overrides(load_config(DEFAULT), sip_port=5080)
    assert [str(a) for a in config.sip.listen] == ["udp:0.0.0.0:5080", "tcp:0.0.0.0:5080"]
    assert with_overrides(config, sip_port=0).sip.listen[1].port == 0


def test_http_port_rtp_range_and_data_dir(tmp_path: Path) -> None:
    base = load_config(DEFAULT)
    config = with_overrides(base, http_port=0, rtp_ports="40000-40099", data_dir=tmp_path)
    assert (config.http.host, config.http.port) == ("127.0.0.1", 0)
    assert (config.rtp.port_min, config.rtp.port_max) == (40000, 40099)
    assert config.data_dir == tmp_path
    assert with_overrides(base, data_dir=str(tmp_path)).data_dir == tmp_path
    # What is not overridden stays, and the original is untouched (frozen).
    assert config.sip == base.sip and config.routes == base.routes
    assert base.http.port == 8080 and base.data_dir == Path(".")


def test_no_overrides_is_the_same_config() -> None:
    base = load_config(DEFAULT)
    assert with_overrides(base) == base


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sip_port": 65536}, "expected a port number 0-65535, got 65536"),
        ({"sip_port": -1}, "expected a port number 0-65535, got -1"),
        ({"http_port": 70000}, "expected a port number 0-65535, got 70000"),
        ({"rtp_ports": "20000"}, "expected a range such as 20000-29999, got '20000'"),
        ({"rtp_ports": "20000-20001"}, "range 20000-20001 is too small"),
    ],
)
def test_bad_override_values_raise_value_error(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        with_overrides(load_config(DEFAULT), **overrides)  # type: ignore[arg-type]


# -- helpers -------------------------------------------------------------------


def test_parse_port_range() -> None:
    assert parse_port_range("20000-29999") == (20000, 29999)
    assert parse_port_range(" 1024 - 1027 ") == (1024, 1027)
    assert parse_port_range("65532-65535") == (65532, 65535)
    for bad in ("", "20000", "20000-", "-20000", "1023-2000", "2000-65536", "5000-5000", "x-y"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


def test_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("x\n", encoding="utf-8")
    (tmp_path / "b.yml").write_text("x\n", encoding="utf-8")
    (tmp_path / "c.txt").write_text("x\n", encoding="utf-8")
    (tmp_path / "d.yaml").mkdir()
    assert scenario_file(tmp_path, "a") == tmp_path / "a.yaml"
    assert scenario_file(tmp_path, "b") == tmp_path / "b.yml"
    assert scenario_file(tmp_path, "c") is None
    assert scenario_file(tmp_path, "d") is None  # a folder is not a scenario
    assert scenario_file(tmp_path / "absent", "a") is None


# -- relative paths --------------------------------------------------------------------


def test_scenarios_dir_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "etc"
    (conf / "flows").mkdir(parents=True)
    (conf / "flows" / "echo.yaml").write_text("name: echo\n", encoding="utf-8")
    path = conf / "server.yaml"
    path.write_text("scenarios_dir: flows\nroutes:\n  echo: echo\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working folder does not matter
    config = load_config(path)
    assert config.scenarios_dir == conf / "flows"
    assert config.routes == {"echo": "echo"}
    # A relative config path keeps working from its own folder.
    monkeypatch.chdir(tmp_path)
    assert load_config("etc/server.yaml").scenarios_dir == Path("etc/flows")


def test_an_absolute_scenarios_dir_is_used_as_it_is(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (tmp_path / "conf").mkdir()
    config = loads(tmp_path / "conf", f"scenarios_dir: {flows}\n", scenarios=())
    assert config.scenarios_dir == flows


def test_storage_paths_resolve_against_the_data_dir(tmp_path: Path) -> None:
    config = with_overrides(
        loads(tmp_path, "storage:\n  database: db/ms.db\n  recordings: /srv/rec\n"),
        data_dir=tmp_path / "data",
    )
    assert config.database_target() == tmp_path / "data" / "db" / "ms.db"
    assert config.storage_path(config.storage.recordings) == Path("/srv/rec")
    assert config.storage_path(config.storage.cache) == tmp_path / "data" / "data" / "cache"
    # Without --data-dir, relative paths stay relative to the working folder.
    assert load_config(DEFAULT).storage_path(Path("data/x.db")) == Path("data/x.db")


@pytest.mark.parametrize("target", ["../secrets", "sub/dir", "/etc/passwd", ".hidden"])
def test_route_targets_are_names_not_paths(tmp_path: Path, target: str) -> None:
    (tmp_path / "scenarios").mkdir()
    config = tmp_path / "c.yaml"
    config.write_text(f'routes:\n  x: "{target}"\n')
    with pytest.raises(ProblemsError) as err:
        load_config(config)
    assert f"c.yaml:2:6: routes.x: {target!r} is not a scenario name" in str(err.value)


def test_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = loads(tmp_path, "data_dir: .\n")
    assert config.data_dir == tmp_path
    assert config.database_target() == tmp_path / "data" / "mediaserver.db"
    assert loads(tmp_path, "data_dir: /var/lib/ms\n").data_dir == Path("/var/lib/ms")
    # --data-dir wins over the file.
    assert with_overrides(config, data_dir="/srv").data_dir == Path("/srv")


def test_a_bad_data_dir_is_named(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "data_dir: [a]\n") == ["F:1:11: data_dir: expected a string"]


# -- smtp ----------------------------------------------------------------------------------


def test_smtp_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "smtp:\n  host: mail.example.com\n  from: voicemail@example.com\n"
        "  username: vm\n  password: secret\n"
    )
    smtp = load_config(path).smtp
    assert smtp == SmtpConfig(
        "mail.example.com", "voicemail@example.com", 587, "starttls", "vm", "secret", 30.0
    )
    path.write_text("smtp: {host: mail.example.com, from: a@b.c, security: tls}\n")
    tls = load_config(path).smtp
    assert tls is not None and (tls.port, tls.security) == (465, "tls")
    path.write_text("sip: {}\n")
    assert load_config(path).smtp is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp: {from: a@b.c}\n", ["F:1:7: smtp: missing required key host"]),
        ("smtp: {host: h}\n", ["F:1:7: smtp: missing required key from"]),
        ("smtp: {host: h, from: nobody}\n", [
            "F:1:23: smtp.from: expected an address such as voicemail@example.com, got 'nobody'"
        ]),
        ("smtp: {host: h, from: a@b.c, port: 70000}\n", [
            "F:1:36: smtp.port: expected a port number 0-65535, got 70000"
        ]),
        ("smtp: {host: h, from: a@b.c, security: ssl}\n", [
            "F:1:40: smtp.security: expected none, starttls or tls, got 'ssl'"
        ]),
        ("smtp: {host: h, from: a@b.c, username: u}\n", [
            "F:1:7: smtp: username and password go together (give both, or neither)"
        ]),
        ("smtp: {host: h, from: a@b.c, timeout: 0}\n", [
            "F:1:39: smtp.timeout: expected 1 to 300 seconds, got 0"
        ]),
        ("smtp: {host: h, from: a@b.c, tls: true}\n", [
            "F:1:30: unknown key smtp.tls (known: from, host, password, port, security, "
            "timeout, username)"
        ]),
    ],
)  # fmt: skip
def test_smtp_mistakes_name_the_field(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems_of(tmp_path, text) == expected


# -- node: which server this is among several (SPEC section 10) ---------------------------


def test_the_node_name_defaults_to_the_host_name_and_is_read(tmp_path: Path) -> None:
    assert loads(tmp_path, "sip: {}\n").node == NodeConfig(host_name())
    assert host_name() and "." not in host_name()
    assert loads(tmp_path, "node: {name: node-a}\n").node.name == "node-a"
    assert loads(tmp_path, "node:\n  name: 7\n").node.name == "7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "node: {name: 'a b'}\n",
            "F:1:14: node.name: 'a b' is not a node name: up to 63 letters, digits, '.', '_'"
            " or '-', starting with a letter or digit",
        ),
        ("node: {name: ''}\n", "F:1:14: node.name: must not be empty"),
        ("node: {host: x}\n", "F:1:8: unknown key node.host (known: lease, name)"),
        ("node: node-a\n", "F:1:7: node must be a mapping"),
        ("node: {lease: 0}\n", "F:1:15: node.lease: expected seconds, 1 to 3600, got 0"),
    ],
)
def test_bad_node_names_are_named(tmp_path: Path, text: str, message: str) -> None:
    assert problems_of(tmp_path, text) == [message]


def test_node_name_override_is_checked() -> None:
    base = load_config(DEFAULT)
    assert with_overrides(base, node_name="node-b").node.name == "node-b"
    with pytest.raises(ValueError, match="not a node name"):
        with_overrides(base, node_name="-bad")


def test_storage_database_takes_a_postgresql_url_as_written(tmp_path: Path) -> None:
    url = "postgresql://ms:pw@db.example:5433/calls"
    config = loads(tmp_path, f"storage:\n  database: {url}\n")
    assert config.database_target() == url  # not a path: "//" would be merged


def test_relay_workers(tmp_path: Path) -> None:
    """``rtp.relay_workers``: a number of processes, or auto (one per core, none on one)."""
    path = tmp_path / "c.yaml"
    path.write_text("rtp:\n  relay_workers: 3\n")
    assert load_config(path).rtp.relay_workers == 3
    path.write_text("rtp:\n  relay_workers: auto\n")
    assert load_config(path).rtp.relay_workers == auto_relay_workers()
    cores = len(os.sched_getaffinity(0))
    assert auto_relay_workers() == (cores if cores > 1 else 0)
