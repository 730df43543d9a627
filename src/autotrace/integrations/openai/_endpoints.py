"""Where an OpenAI client sends its requests: its provider, read from its base URL, and the
endpoints that rejected the ``stream_options`` autotrace adds to streams."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..._internal import count, log_once

NO_DICT: dict[str, Any] = {}
#: The hosts of Azure OpenAI resources (Azure OpenAI, Azure AI Services and AI Foundry endpoints).
_AZURE_HOSTS = (".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com")
#: OpenAI's regional hosts (the client's ``data_residency``: ``eu.api.openai.com`` ...): OpenAI's API.
_OPENAI_REGIONS = ".api.openai.com"


class Refusals:
    """The endpoints (base URL, Azure API version) that rejected the ``stream_options`` autotrace
    added: their streams are sent as the caller made them. Bounded: endpoints come from the
    application's configuration, a few per process; past the bound, a refusing endpoint's streams
    are each sent twice (counted)."""

    MAX = 256

    def __init__(self) -> None:
        self.endpoints: set[tuple[str, Any]] = set()

    def refused(self, error: BaseException, endpoint: tuple[str, Any]) -> bool:
        """Whether ``error`` is a server's rejection of ``stream_options`` (remembered); never raises."""
        try:
            if getattr(error, "status_code", None) not in (400, 422) or "stream_options" not in str(error):
                return False
        except Exception:  # an error whose str() raises is no rejection autotrace can read
            return False
        count("openai.stream_options_rejected")
        log_once(f"openai:stream_options:{endpoint[0]}", "autotrace: %s rejected stream_options; its streams "
                 "are sent as the caller makes them, without usage", endpoint[0])
        if len(self.endpoints) < self.MAX:
            self.endpoints.add(endpoint)
        return True


REFUSALS = Refusals()


def provider(client: Any) -> tuple[str, str]:
    """(provider, base URL) of a client, cached on the client until its base URL changes: the
    name of the SDK provider the client was made with, else ``azure``, ``openai`` (its regional
    hosts too) or the host of a compatible server.

    The URL is read from where the client's ``base_url`` property keeps it when it is there: in
    recent SDKs the property runs an import statement on every read (about 15,000 instructions)."""
    url_object = getattr(client, "__dict__", NO_DICT).get("_base_url")
    if url_object is None:
        url_object = getattr(client, "base_url", None)
    cached = getattr(client, "_autotrace_provider", None)
    if cached is not None and cached[0] is url_object:
        return cached[1], cached[2]
    base_url = str(url_object or "")
    host = urlsplit(base_url).hostname or ""
    runtime = getattr(getattr(client, "__dict__", NO_DICT).get("_provider_runtime"), "name", None)
    if isinstance(runtime, str) and runtime:
        provider = runtime  # the SDK's own provider (``provider=openai.providers.bedrock(...)``, ``vertex``)
    elif type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI") or host.endswith(_AZURE_HOSTS):
        provider = "azure"  # an Azure client, or the plain client on Azure's v1 API (``.../openai/v1/``)
    elif host == "api.openai.com" or host.endswith(_OPENAI_REGIONS):
        provider = "openai"
    else:
        provider = host or "openai-compatible"
    try:
        client._autotrace_provider = (url_object, provider, base_url)
    except AttributeError:
        pass
    return provider, base_url
