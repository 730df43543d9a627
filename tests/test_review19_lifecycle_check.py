"""``autotrace check`` when there is nothing to check: it names what turned autotrace off, and
where traces go meanwhile (also nowhere)."""

from __future__ import annotations

import pytest

from autotrace import cli


@pytest.mark.parametrize(("variable", "value"), [
    ("OTEL_SDK_DISABLED", "true"), ("LANGFUSE_TRACING_ENABLED", "false"), ("AUTOTRACE_ENABLED", "0")])
def test_disabled_names_the_variable_that_turns_it_off(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str) -> None:
    """It said "disabled (AUTOTRACE_ENABLED)" whichever variable did it, and told to set LANGFUSE_HOST
    (set already) while traces went "to the local store" (a disabled autotrace keeps none)."""
    monkeypatch.setenv("LANGFUSE_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv(variable, value)
    code = cli.main(["check"])
    err = capsys.readouterr().err
    assert (code, err.strip()) == (1, f"autotrace: nothing to check: autotrace is disabled ({variable}), so nothing "
                                      "is exported or stored")


def test_without_langfuse_or_local_store_traces_go_nowhere(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOTRACE_LOCAL_STORE", "off")
    code = cli.main(["check"])
    err = capsys.readouterr().err
    assert (code, err.strip()) == (1, "autotrace: nothing to check: no Langfuse is configured; set LANGFUSE_HOST "
                                      "and the keys (traces go nowhere meanwhile)")
