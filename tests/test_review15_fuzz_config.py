"""Fuzzing review 15: settings as the environment, keywords, prices and credentials files give them.

Properties: any variable text is settings or one ``ConfigError`` line, never another exception; a
keyword given as text reads exactly as its variable; a parsed value written back as text parses
the same; ``AUTOTRACE_PRICES`` JSON of a price table reads back as that table, and any text is a
table or a ``ValueError``/``OSError`` (``install`` skips it); a credentials file written as TOML
or JSON resolves each tenant to exactly the keys written, a broken one to ``LookupFailed``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autotrace import _config_parse as p
from autotrace.config import _ENV, ConfigError, load_settings, read_prices
from autotrace.export.credentials import Credentials, LookupFailed
from autotrace.export.credentials_file import FileCredentials
from autotrace.integrations.openai.pricing import set_prices

_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
#: Settings read from text, but the TLS files (read as files when Langfuse is on).
_NAMES = sorted(name for name in _ENV if not name.startswith("export_client") and name != "export_ca_file")
_RAW = st.one_of(st.text(max_size=25), st.sampled_from([
    "1", "0", "True", " off ", "all", "none", ",", " a, ,b ", "1e999", "nan", "-1", "1_000", "\u0663", "inf", "drop",
    "local", "ON", "https://lf.example.com", "http://u:p@h", "http://h:99999", "pk-lf-1", "sk-lf-1", "email, PHONE",
    "/grpc.health.v1.Health/*", "health/*", "prod", "langfuse-x", "~/x.toml", "{\"m\": [1, 2, 3]}"]))


@_FAST
@given(st.sampled_from(_NAMES), _RAW)
@example("max_retries", "1001")
@example("redact", " ,")
def test_a_keyword_given_as_text_reads_as_its_variable(name: str, raw: str) -> None:
    variable = _ENV[name][0][0]
    try:
        from_env: Any = load_settings(env={variable: raw})
    except ConfigError as exc:
        from_env = ConfigError
        assert "\n" not in str(exc) and (variable in str(exc) or not raw.strip())
    try:
        from_keyword: Any = load_settings({name: raw}, env={})
    except ConfigError as exc:
        from_keyword = ConfigError
        assert "\n" not in str(exc)
    assert from_keyword == from_env


@_FAST
@given(st.dictionaries(st.sampled_from([_ENV[n][0][-1] for n in _NAMES] + ["OTEL_SDK_DISABLED",
                                        "OTEL_RESOURCE_ATTRIBUTES", "LANGFUSE_SAMPLE_RATE", "AUTOTRACE_TYPO"]),
                       _RAW, max_size=6))
def test_any_environment_is_settings_or_one_config_error_line(env: dict[str, str]) -> None:
    try:
        loaded = load_settings(env=env)
    except ConfigError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(("setting ", *env))
        return
    assert loaded.max_export_batch <= loaded.queue_size
    assert all(0 < getattr(loaded, d) < math.inf for d in ("retention_days", "export_interval", "export_timeout"))


_WORD = st.from_regex(r"[A-Za-z0-9_./*:-]{1,8}", fullmatch=True).filter(lambda w: p.all_or_none(w) is None)


@_FAST
@given(st.lists(_WORD, min_size=1, max_size=5), st.sampled_from([", ", ",", " ,  "]))
def test_a_parsed_list_written_back_parses_the_same(words: list[str], separator: str) -> None:
    for parse in (p.names, p.targets, p.methods, p.integrations):
        parsed = parse(separator.join(words))
        assert parsed == tuple(words)
        assert parse(",".join(parsed)) == parsed


@_FAST
@given(st.floats(min_value=1e-9, max_value=1e300), st.integers(1, 10**30), st.booleans())
def test_numbers_and_booleans_written_back_parse_the_same(number: float, count: int, flag: bool) -> None:
    assert p.positive_float(repr(number)) == number
    assert p.positive_int(str(count)) == count
    assert p.boolean(str(flag)) is flag and p.boolean(str(flag).upper()) is flag


_PRICE = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_TABLE = st.dictionaries(st.text(min_size=1, max_size=12), st.one_of(
    st.fixed_dictionaries({"input": _PRICE, "output": _PRICE}, optional={"cached_input": _PRICE, "cache_write": _PRICE}),
    st.fixed_dictionaries({"per_minute": _PRICE}), st.fixed_dictionaries({"per_million_characters": _PRICE}),
    st.lists(_PRICE, min_size=3, max_size=3)), max_size=4)


@_FAST
@given(_TABLE, st.booleans())
def test_prices_as_json_read_back_as_the_table(tmp_path_factory: pytest.TempPathFactory, table: dict[str, Any],
                                               as_file: bool) -> None:
    text = json.dumps(table, indent=2 if as_file else None)
    if as_file:
        path = tmp_path_factory.mktemp("p") / "prices.json"
        path.write_text(text, encoding="utf-8")
        assert read_prices(str(path)) == table
    else:
        assert read_prices(" \n" + text) == table
    set_prices(read_prices(text))  # every price of such a table is one


@pytest.mark.parametrize("name", ["c.json", "c.toml", "prices.json"])
def test_a_file_saved_with_a_byte_order_mark_is_read(tmp_path: Path, name: str) -> None:
    """Notepad and PowerShell 5 save UTF-8 with a byte order mark: before, such a credentials file was
    "invalid" (every tenant's exports stopped) and such a prices file skipped."""
    path = tmp_path / name
    text = {"c.json": '{"tenants": {"acme": {"public_key": "pk-1", "secret_key": "sk-1"}}}',
            "c.toml": '[tenants.acme]\npublic_key = "pk-1"\nsecret_key = "sk-1"\n',
            "prices.json": '{"my-model": {"input": 1.0, "output": 2.0}}'}[name]
    path.write_text("\ufeff" + text, encoding="utf-8")
    if name == "prices.json":
        assert read_prices(str(path)) == {"my-model": {"input": 1.0, "output": 2.0}}
    else:
        assert FileCredentials(path, environ={}).resolve("acme") == Credentials("pk-1", "sk-1")


@_FAST
@given(st.one_of(st.text(max_size=40), st.builds(lambda v: json.dumps(v), st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=5), lambda i: st.lists(i, max_size=3)
    | st.dictionaries(st.text(max_size=5), i, max_size=3), max_leaves=8)).map(lambda t: "{\"m\": " + t + "}")))
@example("{" + "\"a\":" * 5000)
@example('{"m": [1, 2, NaN]}')
def test_any_prices_text_is_a_table_or_refused_with_a_value_or_os_error(text: str) -> None:
    try:
        set_prices(read_prices(text))
    except (ValueError, OSError, RecursionError):  # install() skips such a setting, counted
        pass


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string (escapes for ``"``, ``\\`` and control characters)."""
    body = "".join(f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else "\\" + c if c in '"\\' else c
                   for c in text)
    return f'"{body}"'


_KEY = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=10)  # printable ASCII
_PUBLIC_KEY = _KEY.filter(lambda k: ":" not in k and not k.startswith("sk-lf-"))
_TENANTS = st.dictionaries(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=10),
                           st.tuples(_PUBLIC_KEY, _KEY, st.none() | st.sampled_from(["https://lf.example.com/x",
                                                                              "http://[::1]:3000"]),
                                     st.booleans()), max_size=4)


@_FAST
@given(_TENANTS, st.sampled_from(["c.toml", "c.json"]))
def test_a_credentials_file_resolves_each_tenant_to_the_keys_written(
        tmp_path_factory: pytest.TempPathFactory, tenants: dict[str, tuple[str, str, str | None, bool]],
        name: str) -> None:
    environ: dict[str, str] = {}
    entries: dict[str, dict[str, str]] = {}
    for index, (tenant, (public, secret, host, by_env)) in enumerate(tenants.items()):
        entry = {"public_key": public, **({"host": host} if host else {})}
        if by_env:
            environ[f"SECRET_{index}"] = f" {secret}\n"  # a mounted secret ends with a newline
            entry["secret_key_env"] = f"SECRET_{index}"
        else:
            entry["secret_key"] = secret
        entries[tenant] = entry
    path = tmp_path_factory.mktemp("c") / name
    if name.endswith(".json"):
        path.write_text(json.dumps({"tenants": entries}), encoding="utf-8")
    else:
        path.write_text("".join(f"[tenants.{_toml_string(t)}]\n" + "".join(f"{k} = {_toml_string(v)}\n"
                                                                          for k, v in e.items())
                                for t, e in entries.items()) or "[tenants]\n", encoding="utf-8")
    resolver = FileCredentials(path, environ=environ)
    for tenant, (public, secret, host, _) in tenants.items():
        assert resolver.resolve(tenant) == Credentials(public, secret, host)
    assert resolver.resolve("\x00never-written") is None
    assert sorted(resolver.known_tenants()) == sorted(tenants)


@_FAST
@given(st.binary(max_size=200), st.sampled_from(["c.toml", "c.json"]))
@example(b"\xef\xbb\xbf" + b'{"tenants": {}}', "c.json")
@example(b"[" * 5000, "c.json")
@example(b"a = " + b"[" * 5000, "c.toml")
def test_a_broken_credentials_file_is_lookup_failed_never_another_error(
        tmp_path_factory: pytest.TempPathFactory, raw: bytes, name: str) -> None:
    path = tmp_path_factory.mktemp("c") / name
    path.write_bytes(raw)
    resolver = FileCredentials(path, environ={})
    try:
        assert resolver.resolve("acme") is None
    except LookupFailed as exc:
        assert "\n" not in str(exc)
