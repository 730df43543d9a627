"""Settings: precedence, validation with clear messages, secrets never shown."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path

import pytest

import autotrace
from autotrace.config import ConfigError, load_settings
from autotrace.runtime import state


def test_defaults() -> None:
    s = load_settings(env={})
    assert s.enabled and s.unknown_tenant == "drop" and s.local_store == "auto"
    assert s.local_store_enabled and not s.langfuse_enabled
    assert s.max_value_bytes == 64 * 1024 and s.retention_days == 28.0


def test_kwargs_override_env_and_autotrace_env_beats_otel() -> None:
    env = {"AUTOTRACE_QUEUE_SIZE": "5000", "OTEL_BSP_MAX_QUEUE_SIZE": "9", "OTEL_SERVICE_NAME": "svc",
           "AUTOTRACE_SERVICE_NAME": "mine", "LANGFUSE_HOST": "http://lf:3000"}
    s = load_settings({"service_name": "kw"}, env=env)
    assert s.queue_size == 5000
    assert s.service_name == "kw"
    assert s.langfuse_host == "http://lf:3000" and not s.local_store_enabled


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"AUTOTRACE_QUEUE_SIZE": "abc"}, "AUTOTRACE_QUEUE_SIZE='abc' is invalid for setting 'queue_size'"),
        ({"AUTOTRACE_QUEUE_SIZE": "-1"}, "AUTOTRACE_QUEUE_SIZE='-1' is invalid"),
        ({"AUTOTRACE_CAPTURE_CONTENT": "maybe"}, "AUTOTRACE_CAPTURE_CONTENT='maybe' is invalid"),
        ({"AUTOTRACE_UNKNOWN_TENANT": "everywhere"}, "setting 'unknown_tenant': must be one of drop, default, local"),
        ({"LANGFUSE_HOST": "ftp://x"}, "setting 'langfuse_host': must be an http(s) URL"),
        ({"LANGFUSE_TRACING_ENVIRONMENT": "langfuse-prod"}, "setting 'environment'"),
        ({"LANGFUSE_PUBLIC_KEY": "pk-lf-1"}, "must be set together"),
    ],
)
def test_invalid_settings_name_the_setting(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env=env)
    assert fragment in str(raised.value)


def test_unknown_keyword_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({"queue_sise": 3}, env={})


def test_secret_never_in_repr() -> None:
    s = load_settings(env={"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-verysecret",
                           "LANGFUSE_HOST": "http://127.0.0.1:1"})
    assert "sk-lf-verysecret" not in repr(s)
    assert "pk-lf-1" in repr(s)


def test_otel_sdk_disabled_turns_autotrace_off(tmp_path: Path) -> None:
    assert load_settings(env={"OTEL_SDK_DISABLED": "true"}).enabled is False


def test_lists_from_kwargs_and_env() -> None:
    assert load_settings({"integrations": ["openai", "grpc"]}, env={}).integrations == ("openai", "grpc")
    assert load_settings(env={"AUTOTRACE_DISABLED_INTEGRATIONS": "grpc, qdrant"}).disabled_integrations == (
        "grpc", "qdrant")


def test_redact_is_validated_and_normalised() -> None:
    def hook(key: str, value: object, span_type: str) -> object:
        return value

    assert load_settings(env={"AUTOTRACE_REDACT": "email, Phone"}).redact == ("EMAIL", "PHONE")
    assert load_settings(env={"AUTOTRACE_REDACT": "all"}).redact is True
    assert load_settings(env={"AUTOTRACE_REDACT": "none"}).redact is False
    assert load_settings({"redact": ["email", hook]}, env={}).redact == ("EMAIL", hook)
    assert load_settings({"redact": hook}, env={}).redact is hook
    with pytest.raises(ConfigError) as raised:
        load_settings(env={"AUTOTRACE_REDACT": "emails,phone"})
    assert "AUTOTRACE_REDACT='emails,phone' is invalid for setting 'redact'" in str(raised.value)
    assert "'emails'" in str(raised.value) and "EMAIL, IBAN" in str(raised.value)
    for bad in (["email", "ssn"], ",", 3):
        with pytest.raises(ConfigError, match="setting 'redact'"):
            load_settings({"redact": bad}, env={})


def test_install_with_bad_redact_raises_config_error_and_starts_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
    before = set(threading.enumerate())
    monkeypatch.setenv("AUTOTRACE_REDACT", "emails")
    for _ in range(2):
        with pytest.raises(ConfigError, match="AUTOTRACE_REDACT='emails'"):
            autotrace.install(local_store="on", local_store_path=tmp_path / "u.db", integrations=())
    assert set(threading.enumerate()) <= before
    assert state.settings is not None and state.settings.local_store_path == tmp_path / "t.db"  # kept


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"export_workers": 0}, "setting 'export_workers': must be an integer >= 1, got 0"),
        ({"export_interval": 0}, "setting 'export_interval': must be a number > 0"),
        ({"export_timeout": float("inf")}, "setting 'export_timeout'"),
        ({"retention_days": float("nan")}, "setting 'retention_days'"),
        ({"max_destination_queue": -1}, "setting 'max_destination_queue'"),
        ({"max_retries": 1.5}, "setting 'max_retries': must be an integer >= 0"),
        ({"max_tenants": True}, "setting 'max_tenants'"),
        ({"queue_size": "many"}, "queue_size='many' is invalid for setting 'queue_size'"),
        ({"capture_content": "maybe"}, "capture_content='maybe' is invalid for setting 'capture_content'"),
        ({"backpressure": 0}, "setting 'backpressure': must be true or false"),
        ({"langfuse_host": "http://lf:port"}, "setting 'langfuse_host': must be an http(s) URL"),
        ({"langfuse_host": "http://[::1"}, "setting 'langfuse_host'"),
        ({"langfuse_host": "http://lf host:3000"}, "contains whitespace"),
        ({"langfuse_host": "https://lf.example.com?project=a"}, "cannot have a query or fragment"),
    ],
)
def test_keyword_settings_are_checked_like_environment_ones(options: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(options, env={})
    assert fragment in str(raised.value)


def test_keyword_strings_are_read_like_environment_values() -> None:
    s = load_settings({"capture_content": "false", "backpressure": " no ", "queue_size": "600",
                       "export_timeout": "2.5", "integrations": "openai, grpc"}, env={})
    assert s.capture_content is False and s.backpressure is False
    assert s.queue_size == 600 and s.export_timeout == 2.5 and s.integrations == ("openai", "grpc")


def test_a_langfuse_host_with_a_path_or_trailing_slash_is_accepted() -> None:
    host = load_settings(env={"LANGFUSE_HOST": " http://lf:3000/langfuse/ "}).langfuse_host
    assert host == "http://lf:3000/langfuse/"
    with pytest.raises(ConfigError, match="setting 'langfuse_host'"):
        load_settings(env={"LANGFUSE_HOST": "http://lf:99999"})


def test_a_small_queue_given_alone_caps_the_batch_size() -> None:
    assert load_settings(env={"OTEL_BSP_MAX_QUEUE_SIZE": "7"}).max_export_batch == 7
    assert load_settings({"queue_size": 100}, env={}).max_export_batch == 100
    assert load_settings({"queue_size": 5000}, env={}).max_export_batch == 512  # the default fits
    with pytest.raises(ConfigError, match=r"max_export_batch.*\(50 > 7\)"):  # both given: the user's to fix
        load_settings({"queue_size": 7, "max_export_batch": 50}, env={})


def test_an_unknown_integration_name_is_said_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="autotrace"):
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai", "opneai"),
                          disabled_integrations=("grcp",))
    assert "no integration named grcp, opneai (known: " in caplog.text and "openai" in caplog.text
    assert autotrace.stats()["integrations_unknown"] == 2


def test_an_export_interval_that_would_spin_and_a_thread_count_past_reason_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"setting 'export_interval': must be a number > 0.001"):
        load_settings({"export_interval": 1e-9}, env={})
    with pytest.raises(ConfigError, match=r"setting 'export_workers': must be at most 64"):
        load_settings(env={"AUTOTRACE_EXPORT_WORKERS": "100000"})
    assert load_settings({"export_interval": 0.05, "export_workers": 64}, env={}).export_workers == 64


def test_an_autotrace_variable_no_setting_reads_is_said_once_with_the_likely_one(
        caplog: pytest.LogCaptureFixture) -> None:
    env = {"AUTOTRACE_CAPTURE_CONTNET": "false", "AUTOTRACE_ZZZ": "1", "AUTOTRACE_HOME": "/tmp/h",
           "AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-lf-1", "AUTOTRACE_TENANT_IDLE_SECONDS": "30"}
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        settings = load_settings(env=env)
        load_settings(env=env)
    assert settings.capture_content is True  # the typo leaves the setting at its default: hence the warning
    assert [r.getMessage() for r in caplog.records] == [
        "autotrace: AUTOTRACE_CAPTURE_CONTNET is not a setting autotrace reads (did you mean "
        "AUTOTRACE_CAPTURE_CONTENT?)",
        "autotrace: AUTOTRACE_ZZZ is not a setting autotrace reads"]
    assert autotrace.stats()["config_unknown_variables"] == 2  # each variable once, however often read


def test_option_names_are_read_whatever_their_case() -> None:
    settings = load_settings({"local_store": " OFF "}, env={"AUTOTRACE_UNKNOWN_TENANT": "Local"})
    assert (settings.unknown_tenant, settings.local_store) == ("local", "off")
    with pytest.raises(ConfigError, match="unknown_tenant"):
        load_settings(env={"AUTOTRACE_UNKNOWN_TENANT": "Dropp"})


def test_without_a_home_directory_the_store_lives_in_the_temporary_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No HOME and a user id without a passwd entry (a container started with ``--user 12345``):
    ``Path.home()`` raises, and install() must not."""
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("AUTOTRACE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    path = load_settings(env={}).local_store_path
    assert path == tmp_path / f"autotrace-{os.getuid()}" / "traces.db"
    autotrace.install(integrations=())
    with autotrace.start_span("no home"):
        pass
    assert autotrace.flush(10)
    store = autotrace.local_store()
    assert store is not None and [o["name"] for o in store.observations()] == ["no home"]


@pytest.mark.parametrize("variable", ["AUTOTRACE_INTEGRATIONS", "AUTOTRACE_DISABLED_INTEGRATIONS",
                                      "AUTOTRACE_REDACT", "AUTOTRACE_TENANT_BAGGAGE"])
def test_a_list_of_commas_alone_is_refused_not_read_as_nothing(variable: str) -> None:
    # "," once turned every integration (or detector, or target) off without a word
    with pytest.raises(ConfigError, match=rf"{variable}=', ,' is invalid.*only commas"):
        load_settings(env={variable: ", ,"})


def test_integrations_take_the_all_and_none_words() -> None:
    assert load_settings(env={"AUTOTRACE_INTEGRATIONS": "none"}).integrations == ()
    assert load_settings(env={"AUTOTRACE_INTEGRATIONS": "ALL"}).integrations is None
    assert load_settings({"integrations": "off"}).integrations == ()
    assert load_settings(env={"AUTOTRACE_INTEGRATIONS": "openai, grpc"}).integrations == ("openai", "grpc")
