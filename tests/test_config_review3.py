"""Settings as a production deployment gives them: which variable wins (as Langfuse's and
OpenTelemetry's own SDKs read them), errors that name the variable a refused value came from,
typos warned of, secrets never echoed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

import autotrace
from autotrace.config import ConfigError, load_settings
from autotrace.diagnostics import from_environment
from autotrace.export.destination import Destination
from autotrace.export.sink import SinkResult

KEYS = {"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-topsecret"}


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTOTRACE_MAX_VALUE_BYTES": "100"},
     "setting 'max_value_bytes': must be an integer >= 256, got 100 (from AUTOTRACE_MAX_VALUE_BYTES)"),
    ({"AUTOTRACE_MAX_RETRIES": "-1"}, "setting 'max_retries': must be an integer >= 0, got -1 (from AUTOTRACE_MAX_RETRIES)"),
    ({"AUTOTRACE_EXPORT_TIMEOUT": "1e9"},
     "setting 'export_timeout': must be a number > 0 and <= 86400, got 1000000000.0 (from AUTOTRACE_EXPORT_TIMEOUT)"),
    ({"AUTOTRACE_LOCAL_STORE_MAX_MB": "inf"},
     "setting 'local_store_max_mb': must be a positive number of MiB, got inf (from AUTOTRACE_LOCAL_STORE_MAX_MB)"),
    ({"AUTOTRACE_UNKNOWN_TENANT": "dropp"},
     "setting 'unknown_tenant': must be one of drop, default, local, got 'dropp' (from AUTOTRACE_UNKNOWN_TENANT)"),
    ({"LANGFUSE_TRACING_ENVIRONMENT": "Production"}, "setting 'environment': must match ^(?!langfuse)[a-z0-9_-]+$ "
     "and be at most 40 characters (from LANGFUSE_TRACING_ENVIRONMENT)"),
    ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1000", "AUTOTRACE_QUEUE_SIZE": "500"}, "setting 'max_export_batch': must not "
     "exceed queue_size (1000 > 500) (from OTEL_BSP_MAX_EXPORT_BATCH_SIZE, AUTOTRACE_QUEUE_SIZE)"),
    ({"LANGFUSE_HOST": "https://lf", "LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk lf"},
     "setting 'public_key': the default project's key pair is invalid: secret_key must not contain whitespace or "
     "control characters (from LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY)"),
], ids=["count", "retries", "duration", "cap", "choice", "environment", "batch-over-queue", "key-pair"])
def test_a_value_the_environment_gives_is_refused_naming_its_variable(env: dict[str, str], message: str) -> None:
    """Only the TLS files' errors said where the value came from: a deployment setting
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE for another SDK saw 'max_export_batch' and no variable it had set."""
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert str(raised.value) == message


def test_a_keyword_refused_names_the_setting_alone_and_a_keyword_beats_the_variable() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"max_value_bytes": 100}, env={"AUTOTRACE_MAX_VALUE_BYTES": "100"})
    assert str(raised.value) == "setting 'max_value_bytes': must be an integer >= 256, got 100"
    with pytest.raises(ConfigError) as raised:
        load_settings({"queue_size": 10}, env={"AUTOTRACE_MAX_EXPORT_BATCH": "20"})
    assert str(raised.value) == ("setting 'max_export_batch': must not exceed queue_size (20 > 10) "
                                 "(from AUTOTRACE_MAX_EXPORT_BATCH)")


def test_langfuse_base_url_wins_over_the_deprecated_langfuse_host_as_in_the_langfuse_sdk() -> None:
    """The Langfuse SDK reads LANGFUSE_BASE_URL first (LANGFUSE_HOST is its deprecated name): with both
    set (a new variable next to an old one left in a base image), traces went to the other server."""
    env = {"LANGFUSE_HOST": "https://old.example.com", "LANGFUSE_BASE_URL": "https://new.example.com"}
    assert load_settings(env=env).langfuse_host == "https://new.example.com"
    assert load_settings(env={**env, "AUTOTRACE_LANGFUSE_HOST": "https://mine.example.com"}).langfuse_host == \
        "https://mine.example.com"
    assert load_settings(env={**env, "LANGFUSE_BASE_URL": " "}).langfuse_host == "https://old.example.com"
    settings = load_settings(env=env)
    assert [r for r in from_environment(settings, env) if r["setting"] == "langfuse_host"] == [
        {"setting": "langfuse_host", "value": "https://new.example.com", "variable": "LANGFUSE_BASE_URL"}]


@pytest.mark.parametrize("spelling", ["false", "False", "FALSE", " false ", "0", "off", "no"])
def test_langfuse_tracing_enabled_false_turns_tracing_off(spelling: str) -> None:
    """The Langfuse SDK sends nothing with LANGFUSE_TRACING_ENABLED=false; autotrace read that
    deployment's LANGFUSE_HOST and keys and exported anyway."""
    env = {"LANGFUSE_HOST": "https://lf.example.com", **KEYS, "LANGFUSE_TRACING_ENABLED": spelling}
    settings = load_settings(env=env)
    assert settings.enabled is False
    assert [r for r in from_environment(settings, env) if r["setting"] == "enabled"] == [
        {"setting": "enabled", "value": "False", "variable": "LANGFUSE_TRACING_ENABLED"}]


def test_autotrace_enabled_and_a_keyword_win_over_langfuse_tracing_enabled() -> None:
    env = {"LANGFUSE_TRACING_ENABLED": "false"}
    assert load_settings(env={**env, "AUTOTRACE_ENABLED": "true"}).enabled is True
    assert load_settings({"enabled": True}, env=env).enabled is True
    assert load_settings(env={"LANGFUSE_TRACING_ENABLED": "true"}).enabled is True
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"LANGFUSE_TRACING_ENABLED": "perhaps"})
    assert str(raised.value) == ("LANGFUSE_TRACING_ENABLED='perhaps' is invalid for setting 'enabled': "
                                 "expected true/false")


def test_info_names_the_variable_that_turned_tracing_off_or_named_the_service() -> None:
    """``autotrace info`` listed AUTOTRACE_ENABLED=true as the source of enabled=False when
    OTEL_SDK_DISABLED=true had turned it off, and no source for a service name from
    OTEL_RESOURCE_ATTRIBUTES."""
    env = {"AUTOTRACE_ENABLED": "true", "OTEL_SDK_DISABLED": "true",
           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=checkout%20api"}
    settings = load_settings(env=env)
    assert (settings.enabled, settings.service_name) == (False, "checkout api")
    assert from_environment(settings, env) == [
        {"setting": "enabled", "value": "False", "variable": "OTEL_SDK_DISABLED"},
        {"setting": "service_name", "value": "checkout api", "variable": "OTEL_RESOURCE_ATTRIBUTES"}]


def _warnings(caplog: pytest.LogCaptureFixture, env: dict[str, str]) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        load_settings(env=env)
    return [r.getMessage() for r in caplog.records if r.name == "autotrace"]


def test_the_zero_code_start_marker_of_a_forked_process_is_no_typo(caplog: pytest.LogCaptureFixture) -> None:
    """sitecustomize sets AUTOTRACE_FORKED_PID in a forked worker; a program that worker starts
    inherits it, and its install() (or ``autotrace info``, exit 1) called it a mistyped variable."""
    assert _warnings(caplog, {"AUTOTRACE_FORKED_PID": "4242", "AUTOTRACE_ACTIVATED_PID": "4241"}) == []
    assert autotrace.stats().get("config_unknown_variables", 0) == 0


def test_a_typo_of_a_tenant_setting_is_warned_and_tenant_keys_are_not(caplog: pytest.LogCaptureFixture) -> None:
    """Every AUTOTRACE_TENANT_* name was taken for a tenant's keys: AUTOTRACE_TENANT_BAGAGE=none left
    tenant ids flowing to every gRPC target, silently. Tenant keys end in _PUBLIC_KEY, _SECRET_KEY,
    _HOST or _ID (``EnvCredentials``); anything else is read by nothing."""
    env = {"AUTOTRACE_TENANT_BAGAGE": "none", "AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-lf-a",
           "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk-lf-a", "AUTOTRACE_TENANT_ACME_HOST": "https://lf",
           "AUTOTRACE_TENANT_ACME_CORP_ID": "acme-corp", "AUTOTRACE_TENANT_ACME_SECRET": "sk-lf-b"}
    assert _warnings(caplog, env) == [
        "autotrace: AUTOTRACE_TENANT_ACME_SECRET is not a setting autotrace reads",
        "autotrace: AUTOTRACE_TENANT_BAGAGE is not a setting autotrace reads (did you mean AUTOTRACE_TENANT_BAGGAGE?)"]
    assert autotrace.stats()["config_unknown_variables"] == 2


@pytest.mark.parametrize("host", ["https://admin:hunter2-pw@langfuse.example.com",
                                  "https://admin:hunter2-pw@langfuse.example.com/?x=1",
                                  "https://:hunter2-pw@langfuse example.com"])
def test_a_password_in_the_langfuse_url_is_refused_and_never_echoed(host: str) -> None:
    """The exporter sends only the key pair (the URL's user:password@ went nowhere) while the error,
    ``autotrace info`` and ``repr(settings)`` showed the password."""
    for overrides, env in (({}, {"LANGFUSE_HOST": host}), ({"langfuse_host": host}, {})):
        with pytest.raises(ConfigError) as raised:
            load_settings(overrides, env=env)
        assert "hunter2-pw" not in str(raised.value)
        assert str(raised.value).startswith("setting 'langfuse_host': must be an http(s) URL")
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"LANGFUSE_HOST": "https://admin:hunter2-pw@langfuse.example.com"})
    assert str(raised.value) == (
        "setting 'langfuse_host': must be an http(s) URL such as https://langfuse.example.com, got "
        "'https://***@langfuse.example.com' (Langfuse takes the key pair, not a user and password in the URL) "
        "(from LANGFUSE_HOST)")


def test_a_secret_key_given_as_the_public_key_is_refused_without_showing_it() -> None:
    """Swapped LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY: the public key is shown by ``autotrace
    info``, logs and reprs, so the secret was printed in the clear (and every export got 401)."""
    env = {"LANGFUSE_HOST": "https://lf.example.com", "LANGFUSE_PUBLIC_KEY": "sk-lf-topsecret",
           "LANGFUSE_SECRET_KEY": "pk-lf-1"}
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert str(raised.value) == ("setting 'public_key': holds a secret key (sk-lf-...): are LANGFUSE_PUBLIC_KEY and "
                                 "LANGFUSE_SECRET_KEY swapped? (from LANGFUSE_PUBLIC_KEY)")
    with pytest.raises(ConfigError, match="holds a secret key"):
        load_settings({"public_key": "sk-lf-topsecret", "secret_key": "pk-lf-1"}, env={})


def test_paths_expand_home_and_become_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={"AUTOTRACE_LOCAL_STORE_PATH": "~/t.db", "AUTOTRACE_CREDENTIALS_FILE": "c.toml"})
    assert settings.local_store_path == tmp_path / "t.db"
    assert settings.credentials == tmp_path / "c.toml"


class _Down:
    """A sink whose endpoint is down: every export is a retryable failure."""

    name = "down"

    def export(self, items: object) -> SinkResult:
        return SinkResult(ok=False, retryable=True, reason="HTTP 503", status=503)

    def close(self) -> None:
        """Nothing to close."""


def test_max_retries_is_bounded_so_a_batch_retried_to_the_end_is_dropped_and_counted() -> None:
    """The backoff is 0.5 s * 2**(attempt-1): with AUTOTRACE_MAX_RETRIES=5000 a batch's 1025th retry
    (about 8.5 hours into an outage) raised OverflowError on the export worker and the batch was lost
    uncounted."""
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"AUTOTRACE_MAX_RETRIES": "5000"})
    assert str(raised.value) == ("setting 'max_retries': must be at most 1000 (each retry waits up to 30 s), "
                                 "got 5000 (from AUTOTRACE_MAX_RETRIES)")
    assert _attempts_until_dropped(load_settings(env={"AUTOTRACE_MAX_RETRIES": "1000"}).max_retries) == 1001
    assert (autotrace.stats()["export_failures"], autotrace.stats()["spans_dropped.export_failed"]) == (1001, 1)


def test_a_destination_given_more_retries_than_the_setting_allows_backs_off_without_overflow() -> None:
    """The backoff's exponent is bounded too: a destination built with more retries than the setting
    takes (another embedding) retries to its end and counts the batch dropped."""
    assert _attempts_until_dropped(1100) == 1101 and autotrace.stats()["spans_dropped.export_failed"] == 1


def _attempts_until_dropped(max_retries: int) -> int:
    """How many exports a destination whose sink is down makes of one span, a minute apart, before
    it drops it."""
    now = [0.0]
    destination = Destination("t", _Down(), max_queue=10, max_batch=10, max_retries=max_retries, clock=lambda: now[0])
    destination.add(object())
    attempts = 0
    while destination.pending:
        now[0] += 60.0
        assert destination.due(now[0], 1.0, False)
        destination.export(destination.take())
        attempts += 1
    return attempts


def test_autotrace_home_is_read_from_the_environment_given_and_a_blank_one_is_unset(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A blank AUTOTRACE_HOME (``AUTOTRACE_HOME=" "`` in a compose file) put the store in a directory
    named by the blanks under the working directory; the one in ``env`` was not read (os.environ's was)."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOTRACE_HOME", " ")
    assert load_settings(env={}).local_store_path == tmp_path / "user" / ".autotrace" / "traces.db"
    assert load_settings(env={"AUTOTRACE_HOME": f" {tmp_path}/at "}).local_store_path == tmp_path / "at" / "traces.db"
    assert load_settings(env={"AUTOTRACE_HOME": " "}).local_store_path == tmp_path / "user" / ".autotrace" / "traces.db"


def test_the_langfuse_sdks_sample_rate_is_warned_of_when_nothing_samples(caplog: pytest.LogCaptureFixture) -> None:
    """A deployment moved from the Langfuse SDK with LANGFUSE_SAMPLE_RATE=0.1 sent every trace (ten
    times the volume and cost), silently: autotrace's tracer provider samples by OTEL_TRACES_SAMPLER."""
    assert _warnings(caplog, {"LANGFUSE_SAMPLE_RATE": " 0.1 "}) == [
        "autotrace: LANGFUSE_SAMPLE_RATE=0.1 is the Langfuse SDK's, not read by autotrace: every trace is sent; "
        "sample with OTEL_TRACES_SAMPLER=parentbased_traceidratio and OTEL_TRACES_SAMPLER_ARG=0.1"]
    assert _warnings(caplog, {"LANGFUSE_SAMPLE_RATE": "1.0"}) == []
    assert _warnings(caplog, {"LANGFUSE_SAMPLE_RATE": "0.2", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                              "OTEL_TRACES_SAMPLER_ARG": "0.2"}) == []
