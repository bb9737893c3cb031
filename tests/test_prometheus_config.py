"""Settings of the exports and the exporter, exactly: Pushgateway targets and
retries (against a real closed port), the web config and basic auth, spans,
listen addresses, the JSON log lines."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

import bcrypt
import pytest
from peers import free_port

from scanner.cli import options
from scanner.errors import ConfigError, PushError, WebConfigError
from scanner.exporters.metrics import process_exposition
from scanner.exporters.prometheus import push
from scanner.exporters.web import BasicAuth, load_web_config
from scanner.fleet.pki import PKI
from scanner.logs import configure
from scanner.settings import PushSettings
from scanner.shard import Shard


def parse_push_target(
    url: str, job: str | None, grouping: list[str], environ: dict[str, str]
) -> PushSettings:
    target = options.push_settings(url, job, grouping, environ, None)
    assert target is not None
    return target


def test_push_target_from_flags_and_environment() -> None:
    target = parse_push_target("gw.example:9091/", None, ["shard=0", "region=eu/west"], {})
    assert target == PushSettings(
        url="http://gw.example:9091",
        job="pinaudit",
        grouping=(("shard", "0"), ("region", "eu/west")),
    )
    env = {"PINAUDIT_PUSH_USERNAME": "u", "PINAUDIT_PUSH_PASSWORD": "p"}
    target = parse_push_target("https://gw/prefix", "certs", [], env)
    assert (target.url, target.job, target.username, target.password) == (
        "https://gw/prefix",
        "certs",
        "u",
        "p",
    )
    assert "password='p'" not in repr(target)
    with pytest.raises(ConfigError, match="set both PINAUDIT_PUSH_USERNAME and"):
        parse_push_target("gw:9091", None, [], {"PINAUDIT_PUSH_USERNAME": "u"})
    with pytest.raises(ConfigError, match="no query, fragment or credentials"):
        parse_push_target("http://u:p@gw:9091", None, [], {})
    with pytest.raises(ConfigError, match="given twice"):
        parse_push_target("gw:9091", None, ["a=1", "a=2"], {})
    with pytest.raises(ConfigError, match="KEY a label name"):
        parse_push_target("gw:9091", None, ["bad-key=1"], {})
    with pytest.raises(ConfigError, match="--push-job must not be empty"):
        parse_push_target("gw:9091", "", [], {})
    with pytest.raises(ConfigError, match="--push-job and --grouping need --push-gateway"):
        options.push_settings(None, None, ["a=1"], {}, None)


def test_each_shard_pushes_under_its_own_group() -> None:
    shard = Shard(2, 4)
    target = options.push_settings("gw:9091", None, ["region=eu"], {}, shard)
    assert target is not None
    assert target.grouping == (("region", "eu"), ("shard", "2"))
    same = options.push_settings("gw:9091", None, ["shard=2"], {}, shard)
    assert same is not None and same.grouping == (("shard", "2"),)
    with pytest.raises(ConfigError, match=r"--grouping shard=1 contradicts --shard 2/4"):
        options.push_settings("gw:9091", None, ["shard=1"], {}, shard)


def test_push_retries_then_fails_with_one_line() -> None:
    port = free_port()
    pauses: list[float] = []
    target = PushSettings(url=f"http://127.0.0.1:{port}", grouping=(("shard", "1"),))
    with pytest.raises(PushError) as caught:
        push(target, process_exposition("1.0"), sleep=pauses.append)
    assert pauses == [0.5, 1.0]
    assert str(caught.value) == (
        f"push to http://127.0.0.1:{port}/metrics/job/pinaudit/shard/1 failed after 3 attempts: "
        "connection refused"
    )


@pytest.fixture(scope="module")
def hashed() -> bytes:
    return bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4))


def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


def test_basic_auth(hashed: bytes) -> None:
    auth = BasicAuth({"prom": hashed})
    assert auth.check(_basic("prom:s3cret"))
    assert auth.check(_basic("prom:s3cret"))  # from the cache
    assert auth.check("basic " + base64.b64encode(b"prom:s3cret").decode())  # scheme: any case
    for header in (
        None,
        "",
        _basic("prom:wrong"),
        _basic("other:s3cret"),
        _basic("prom"),
        _basic("prom:" + "x" * 73),
        "Basic !!!not-base64",
        "Bearer " + base64.b64encode(b"prom:s3cret").decode(),
    ):
        assert not auth.check(header), header


def test_web_config_resolves_paths_beside_the_file(tmp_path: Path, hashed: bytes) -> None:
    pki = PKI(datetime.now(timezone.utc))
    leaf = pki.leaf("localhost", pki.root("Root"))
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "c.pem").write_bytes(leaf.pem)
    (tmp_path / "tls" / "k.pem").write_bytes(leaf.key_pem())
    config = tmp_path / "web.yml"
    config.write_text(
        "tls_server_config:\n  cert_file: tls/c.pem\n  key_file: tls/k.pem\n"
        f"basic_auth_users:\n  prom: '{hashed.decode()}'\n"
    )
    web = load_web_config(str(config))
    assert web.tls is not None
    assert (web.tls.cert_file, web.tls.key_file) == (
        str(tmp_path / "tls" / "c.pem"),
        str(tmp_path / "tls" / "k.pem"),
    )
    assert dict(web.users) == {"prom": hashed}
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert load_web_config(str(empty)).tls is None
    bad = tmp_path / "bad.yml"
    bad.write_text("basic_auth_users:\n  'a:b': x\n")
    with pytest.raises(WebConfigError, match="without ':'"):
        load_web_config(str(bad))
    bad.write_text("http_server_config:\n  http2: false\n")
    with pytest.raises(WebConfigError, match="'http_server_config' is not supported"):
        load_web_config(str(bad))


def test_spans_and_listen_addresses() -> None:
    spans = ("90", "500ms", "30s", "5m", "24h", "1.5d")
    assert [options.duration("--interval", t) for t in spans] == [
        90.0,
        0.5,
        30.0,
        300.0,
        86400.0,
        129600.0,
    ]
    with pytest.raises(ConfigError, match=r"^--interval '-5m': must be greater than 0$"):
        options.duration("--interval", "-5m")
    with pytest.raises(ConfigError, match=r"^--retention '99999999999d': must be at most 36500d$"):
        options.duration("--retention", "99999999999d")
    assert options.listen(":9918") == ("", 9918)
    assert options.listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert options.listen("[::1]:9918") == ("::1", 9918)
    with pytest.raises(ConfigError, match=r"port must be 0\.\.65535"):
        options.listen("127.0.0.1:70000")


def test_log_lines_are_json_objects_off_a_terminal() -> None:
    stream = io.StringIO()
    log = configure(stream)  # auto: a StringIO is no terminal
    log.info("scan finished", extra={"fields": {"endpoints": 3, "ok": 2}})
    log.error("inventory reload failed", extra={"fields": {"error": 'x.yaml:1:1: "bad"'}})
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["level"], r["logger"], r["msg"]) for r in records] == [
        ("info", "pinaudit", "scan finished"),
        ("error", "pinaudit", "inventory reload failed"),
    ]
    assert records[0]["endpoints"] == 3 and records[1]["error"] == 'x.yaml:1:1: "bad"'
    assert records[0]["time"].endswith("Z")

    text = io.StringIO()
    configure(text, "text").warning("slow", extra={"fields": {"seconds": 1.5}})
    line = text.getvalue()
    assert line.endswith(" warning slow seconds=1.5\n")
    assert not logging.getLogger("pinaudit").propagate


def test_logfmt_lines_as_prometheus_writes_them() -> None:
    """--log.format=logfmt: go-kit's key order (ts, caller, level, msg), bare
    values where they can be, Go-style quoting where they cannot, and every
    control character escaped: a value from the wire never reaches a
    terminal raw, and a record never takes two lines."""
    stream = io.StringIO()
    log = configure(stream, "logfmt", "info")
    log.debug("not shown at info")
    log.info(
        "scan finished",
        extra={"fields": {"endpoints": 3, "deadline_hit": False, "duration_seconds": 1.5}},
    )
    log.warning(
        "http: connection reset",
        extra={"fields": {"client": "127.0.0.1:5000", "error": 'x.yaml:1:1: "bad"\nnext'}},
    )
    log.error("tls", extra={"fields": {"subject": "CN=\x1b[31mred", "empty": "", "none": None}})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    stamp = r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z caller=test_prometheus_config\.py:\d+ "
    assert re.fullmatch(
        stamp + r'level=info msg="scan finished" endpoints=3 deadline_hit=false '
        r"duration_seconds=1\.5",
        lines[0],
    ), lines[0]
    assert re.fullmatch(
        stamp + r'level=warn msg="http: connection reset" client=127\.0\.0\.1:5000 '
        r'error="x\.yaml:1:1: \\"bad\\"\\nnext"',
        lines[1],
    ), lines[1]
    assert re.fullmatch(
        stamp + r'level=error msg=tls subject="CN=\\u001b\[31mred" empty="" none=null',
        lines[2],
    ), lines[2]
    assert "\x1b" not in stream.getvalue()
    with pytest.raises(ValueError, match="unknown log level 'verbose'"):
        configure(io.StringIO(), "logfmt", "verbose")
