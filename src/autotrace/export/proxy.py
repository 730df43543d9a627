"""Which forward proxy an export URL goes through, from the standard environment variables.

``HTTPS_PROXY``/``HTTP_PROXY`` (by the target's scheme), else ``ALL_PROXY``, unless ``NO_PROXY``
covers the host; lower-case names win over upper-case ones. Read with ``urllib.request``, as
mainstream clients read them: loopback hosts get no exception of their own. A ``NO_PROXY`` entry
may also be an address range (``10.0.0.0/8``, ``fd00::/8``), as curl and requests read it: an
in-cluster Langfuse reached by its IP stays off a corporate proxy. ``http://`` and ``https://``
proxies are supported (CONNECT for https targets; with an ``https://`` proxy the hop to it is TLS
too); any other (``socks5://``) makes the target unusable rather than sending around a proxy the
network may mandate. No message here ever holds the credentials.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from urllib.parse import unquote, urlsplit

from .tunnel import authority


class ProxyError(ValueError):
    """The proxy in the environment cannot be used; the message is safe to log (no credentials)."""


@dataclasses.dataclass(frozen=True)
class Proxy:
    """A forward proxy; ``authorization`` is a ``Proxy-Authorization`` value, if any; ``secure``
    when it is reached by TLS (an ``https://`` proxy)."""

    host: str
    port: int
    authorization: str | None = dataclasses.field(default=None, repr=False)
    secure: bool = False

    @property
    def name(self) -> str:
        """How to show it (never with credentials): ``host:port``, ``https://host:port`` for TLS."""
        return ("https://" if self.secure else "") + authority(self.host, self.port)

    def headers(self) -> dict[str, str]:
        """The headers that authenticate to the proxy (none without credentials)."""
        return {"Proxy-Authorization": self.authorization} if self.authorization else {}


def proxy_for(scheme: str, host: str, port: int | None = None) -> Proxy | None:
    """The proxy for a ``scheme`` URL to ``host`` (and ``port``, for ``NO_PROXY`` entries naming
    one), or None to connect directly. Raises ``ProxyError`` for a proxy that cannot be used."""
    import urllib.request  # here: a destination is made at the first span of a tenant, not at import

    proxies = urllib.request.getproxies_environment()
    url = proxies.get(scheme.lower()) or proxies.get("all")
    if not url:
        return None
    if urllib.request.proxy_bypass_environment(f"{host}:{port}" if port else host, proxies):
        return None
    if _address_listed(host, port, proxies.get("no", "")):
        return None
    try:
        return parse_proxy(url)
    except ProxyError as exc:
        raise ProxyError(f"the proxy in {scheme.upper()}_PROXY or ALL_PROXY is unusable: {exc}") from None


def _address_listed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``host``, an IP address, lies in an address range (``a.b.c.d/n``) listed in
    ``no_proxy``, or is an IPv6 address listed as URLs write it, in brackets, with or without
    ``port`` (``[fd00::5]``, ``[fd00::5]:443``): the name matching above takes only the bare form."""
    if "/" not in no_proxy and "[" not in no_proxy:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name, not an address
        return False
    for entry in no_proxy.split(","):
        entry = entry.strip()
        try:
            if entry.startswith("["):
                inside, closed, after = entry[1:].partition("]")
                if closed and ipaddress.ip_address(inside) == address and after in ("", f":{port}"):
                    return True
            elif "/" in entry:
                network = ipaddress.ip_network(entry, strict=False)
                if address.version == network.version and address in network:
                    return True
        except ValueError:  # not an address or a range: left to the name matching above
            continue
    return False


def parse_proxy(url: str) -> Proxy:
    """``http[s]://[user:password@]host[:port]`` (no scheme: ``http://``; port 80, or 443 for
    ``https://``, by default) as a ``Proxy``, its percent-encoded credentials decoded into a Basic
    ``Proxy-Authorization``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ProxyError(f"scheme {scheme[:16]!r} is not supported (only http:// and https:// proxies)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if not parts.hostname:
        raise ProxyError("no host")
    if port == 0:
        raise ProxyError("its port is not a number from 1 to 65535")
    secure = scheme == "https"
    return Proxy(parts.hostname, port or (443 if secure else 80), _basic(parts.username, parts.password), secure)


def _basic(username: str | None, password: str | None) -> str | None:
    """A Basic ``Proxy-Authorization`` value for percent-encoded credentials, or None."""
    if username is None and password is None:
        return None
    pair = f"{unquote(username or '')}:{unquote(password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")
