"""The credentials cache of a secret-store callable is bounded (``max_entries``, least recently used
first out): its evictions were counted only in the resolver's own ``stats()``, which an install given
a plain function never exposes. With more tenants than entries every check of a tenant asks the
secret store again; ``autotrace.stats()`` (and the metrics bridge) now show it."""

from __future__ import annotations

import autotrace
from autotrace.export.credentials import CallableCredentials, Credentials


def test_evictions_of_the_credentials_cache_are_counted_in_autotrace_stats() -> None:
    calls: list[str] = []

    def lookup(tenant: str) -> Credentials:
        calls.append(tenant)
        return Credentials(f"pk-{tenant}", f"sk-{tenant}")

    resolver = CallableCredentials(lookup, max_entries=2)
    for tenant in ("t0", "t1", "t0", "t2", "t1"):  # t2 pushes out t1 (t0 was used since); t1 then t0
        assert resolver.resolve(tenant) == Credentials(f"pk-{tenant}", f"sk-{tenant}")
    assert calls == ["t0", "t1", "t2", "t1"]
    assert resolver.stats()["evictions"] == 2
    assert autotrace.stats()["credentials_cache_evicted"] == 2
