"""Keys a secret store or file hands back malformed: refused at the lookup (``credentials_failed``,
never the default project), rather than sent.

They were taken: a key pasted with a zero-width space failed every export inside ``http.client``
(an internal error, retried with backoff, then ``export_failed``); a public key with ``:`` made
``Authorization: Basic`` name another key pair (the server splits at the first colon); keys swapped
(the public one ``sk-lf-...``, as ``install()`` refuses for the default project) sent the secret key
in the clear in ``x-langfuse-public-key`` and showed it in every ``Credentials`` repr.
"""

from __future__ import annotations

import pytest

import autotrace
from autotrace.export.credentials import Credentials, CredentialsError
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span

ODD = {
    "zero_width": ("pk-lf-acme\u200b", "sk-lf-acme"),
    "non_ascii": ("pk-lf-acmé", "sk-lf-acme"),
    "bom_secret": ("pk-lf-acme", "\ufeffsk-lf-acme"),
    "colon": ("pk-lf:acme", "sk-lf-acme"),
    "swapped": ("sk-lf-acme-s3cret", "pk-lf-acme"),
}


@pytest.mark.parametrize("odd", ODD)
def test_malformed_keys_are_a_failed_lookup_and_nothing_is_sent(rx: OtlpReceiver, odd: str) -> None:
    public, secret = ODD[odd]
    with OtlpReceiver() as acme:
        keys = {"acme": {"public_key": public, "secret_key": secret, "host": acme.endpoint},
                "globex": {"public_key": "pk-lf-globex", "secret_key": "sk-lf-globex", "host": acme.endpoint}}
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", credentials=lambda tenant: keys.get(tenant), integrations=(),
                          local_store="off", export_interval=0.05, max_retries=1)
        ended_span("of acme", "acme")
        ended_span("of globex", "globex")  # another tenant is not held up
        assert autotrace.flush(10)
        assert [(s.name, s.headers["x-langfuse-public-key"]) for s in acme.wait_for_spans(1)] == [
            ("of globex", "pk-lf-globex")]
    assert rx.spans == []
    stats = autotrace.stats()
    assert {k: v for k, v in stats.items() if k.startswith(("spans_dropped.", "internal_errors.export"))} == {
        "spans_dropped.credentials_failed": 1}


@pytest.mark.parametrize("odd", ODD)
def test_the_error_names_the_field_never_the_value(odd: str) -> None:
    public, secret = ODD[odd]
    with pytest.raises(CredentialsError) as raised:
        Credentials(public, secret)
    assert "acme" not in str(raised.value) and "s3cret" not in str(raised.value)


def test_keys_of_every_printable_ascii_character_are_taken() -> None:
    keys = Credentials("pk-lf_AZaz09.~+/=!#$%&'*@[]^{|}", "sk:lf-\"(),;<>?`\\")
    assert keys.authorization_header().startswith("Basic ")
    assert "sk:lf" not in repr(keys)
