"""Export under faults that used to leak or hang: tenants sharing environment keys, a tenant moved to
another host, fork while a worker is inside SQLite or a credentials lookup, a slow secret store,
threads left behind by uninstall, and the drop policy against the local store."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import autotrace
import autotrace.export.router as router_module
from autotrace.config import load_settings
from autotrace.export.credentials import Credentials, coerce_resolver
from autotrace.export.local_store import LocalStore
from autotrace.export.router import Router
from autotrace.export.workers import WorkerPool
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span, wait_for_stat

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")




def _exit_code_of_child(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_environment_keys_of_one_tenant_never_carry_another_tenants_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """``acme-corp``, ``acme.corp`` and ``ACME:corp`` share the environment name of ``acme_corp``
    but not its keys (the default resolver)."""
    with OtlpReceiver() as rx:
        monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_PUBLIC_KEY", "pk-acme-corp")
        monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_SECRET_KEY", "sk-acme-corp")
        monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_HOST", rx.endpoint)
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05)
        for tenant in ("acme_corp", "acme-corp", "acme.corp", "ACME:corp"):
            ended_span(f"span of {tenant}", tenant)
        assert autotrace.flush(10)
        assert [s.name for s in rx.spans] == ["span of acme_corp"]
    assert autotrace.stats()["spans_dropped.unknown_tenant"] == 3


def test_a_tenant_moved_to_another_host_never_sends_its_new_keys_to_the_old_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.0)  # look the tenant up for every span
    with OtlpReceiver() as old, OtlpReceiver() as new:
        current = {"a": Credentials("pk-a", "sk-a", host=old.endpoint)}

        class Moving:
            def resolve(self, tenant: str) -> Credentials | None:
                return current.get(tenant)

        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials=Moving())
        old.fail_with(503)  # the first span waits at the old destination to be retried
        ended_span("before move", "a")
        assert wait_for_stat("export_failures") >= 1
        current["a"] = Credentials("pk-a2", "sk-a2-NEW", host=new.endpoint)
        old.fail_with(None)  # from now on the old host records whatever reaches it
        ended_span("after move", "a")
        assert autotrace.flush(10)
        assert {r.headers["authorization"] for r in old.requests} <= {basic_auth("pk-a", "sk-a")}
        assert "after move" not in [s.name for s in old.spans]
        assert "after move" in [s.name for s in new.spans]
        assert {r.headers["authorization"] for r in new.requests} == {basic_auth("pk-a2", "sk-a2-NEW")}
        # the waiting span moved with its tenant (or, had it been in flight, was counted)
        before = [s.name for s in old.spans + new.spans].count("before move")
        assert before + autotrace.stats().get("spans_dropped.credentials_revoked", 0) >= 1


@needs_fork
def test_fork_waits_until_no_thread_is_inside_the_local_store(tmp_path: Path) -> None:
    """A worker paused inside SQLite (mid-INSERT) when another thread forks: the fork happens only
    after the write is committed, so the child inherits no SQLite state held by a vanished thread,
    and opens its own connection on first use."""
    store = LocalStore(tmp_path / "s.db")
    store.purge()  # the first write's retention purge done now: the write below ends with its COMMIT
    inside, release = threading.Event(), threading.Event()
    statements: list[str] = []  # the first word of each statement run, in order
    connection = store._db
    assert connection is not None
    connection.set_trace_callback(lambda sql: statements.append(sql.split()[0].upper()))

    def progress() -> int:
        if statements and statements[-1] == "INSERT" and not inside.is_set():
            inside.set()
            release.wait(2.0)  # long enough for the fork to start while this write is inside SQLite
        return 0

    connection.set_progress_handler(progress, 1)
    record = {"trace_id": "ab" * 16, "id": "cd" * 8, "parent_id": None, "name": "n", "type": "span",
              "tenant": None, "start_ns": 1, "end_ns": time.time_ns(), "level": "DEFAULT", "model": None,
              "usage": None, "cost": None}
    writer = threading.Thread(target=store.write, args=([record],))
    writer.start()
    assert inside.wait(10)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # the parent's write was complete when the process forked (the size check may follow it)
            if "COMMIT" in statements[statements.index("INSERT"):]:
                store.write([{**record, "id": "ef" * 8}])
                code = 0 if len(store.trace("ab" * 16)) == 2 else 2
        finally:
            os._exit(code)
    release.set()
    writer.join(10)
    assert _exit_code_of_child(pid) == 0
    assert len(store.trace("ab" * 16)) == 2
    store.close()


@needs_fork
def test_a_forked_child_writes_to_the_local_store(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    ended_span("before-fork")
    assert autotrace.flush(5)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ended_span("in-child")
            code = 0 if autotrace.flush(5) else 2
        finally:
            os._exit(code)
    assert _exit_code_of_child(pid) == 0
    ended_span("parent-after-fork")
    assert autotrace.flush(5)
    store = autotrace.local_store()
    assert store is not None
    assert sorted(o["name"] for o in store.observations()) == ["before-fork", "in-child", "parent-after-fork"]


@needs_fork
def test_fork_during_a_credentials_lookup_keeps_tracing_in_the_child() -> None:
    with OtlpReceiver() as rx:
        parent = os.getpid()
        started, release = threading.Event(), threading.Event()

        def secret_store(tenant: str) -> Credentials:
            if tenant == "slow" and os.getpid() == parent:
                started.set()
                release.wait(30)
            return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint)

        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials=secret_store)
        ended_span("parent span", "slow")
        assert started.wait(10)  # a lookup of "slow" holds the resolver's locks right now
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ended_span("child span, slow tenant", "slow")
                ended_span("child span, other tenant", "other")
                code = 0 if autotrace.flush(10) else 2
            finally:
                os._exit(code)
        try:
            code = _exit_code_of_child(pid)
        finally:
            release.set()
        assert code == 0
        assert autotrace.flush(10)
        assert sorted(s.name for s in rx.spans) == ["child span, other tenant", "child span, slow tenant",
                                                    "parent span"]


def test_a_slow_credentials_lookup_never_holds_up_other_tenants() -> None:
    """While one tenant's secret-store lookup hangs, other tenants flow; the waiting tenant keeps a
    bounded number of spans (the rest counted) and they go out once the lookup returns."""
    with OtlpReceiver() as rx:
        release = threading.Event()

        def secret_store(tenant: str) -> Credentials:
            if tenant == "slow":
                release.wait(30)
            return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint)

        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials=secret_store)
        try:
            for i in range(router_module._MAX_WAITING + 200):
                ended_span(f"slow {i}", "slow")
            ended_span("fast 0", "fast")  # its lookup must finish (on another worker) while slow's hangs,
            assert wait_for_stat("tenant_destinations_created") == 1  # before a burst past what may park
            for i in range(1, 1500):
                ended_span(f"fast {i}", "fast")
            spans = rx.wait_for_spans(1500, timeout=20)
            assert sum(s.name.startswith("fast") for s in spans) == 1500
            assert not [s for s in spans if s.name.startswith("slow")]
        finally:
            release.set()
        assert autotrace.flush(10)
        assert sum(s.name.startswith("slow") for s in rx.spans) == router_module._MAX_WAITING
    stats = autotrace.stats()
    assert stats["spans_dropped.credentials_pending"] == 200
    assert [k for k in stats if k.startswith("spans_dropped")] == ["spans_dropped.credentials_pending"]


def test_spans_of_a_tenant_whose_lookup_just_finished_flow_at_once_instead_of_parking() -> None:
    """A finished lookup is applied by the next span of its tenant, not only at the next dispatch
    (up to ``max_export_batch`` spans later): a burst past ``_MAX_WAITING`` is not dropped meanwhile."""
    pool = WorkerPool(1)
    router = Router(load_settings({"langfuse_host": "http://127.0.0.1:9"}, env={}),
                    coerce_resolver({"acme": Credentials("pk", "sk")}), None, pool)
    try:
        router.route("acme", "span 0")
        deadline = time.monotonic() + 10
        while not router._lookups and time.monotonic() < deadline:  # the lookup finished, not applied yet
            time.sleep(0.001)
        assert router._lookups
        for i in range(1, router_module._MAX_WAITING + 500):
            router.route("acme", f"span {i}")
        entry = router._tenants.get("acme")
        assert entry is not None, "the finished lookup was not applied"
        assert entry[0].pending == router_module._MAX_WAITING + 500
        assert not [k for k in autotrace.stats() if k.startswith("spans_dropped")]
    finally:
        router.close()


def test_uninstall_stops_the_export_threads(tmp_path: Path) -> None:
    def export_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("autotrace-export")}

    before = export_threads()
    for i in range(3):
        autotrace.install(local_store="on", local_store_path=tmp_path / f"{i}.db", integrations=(),
                          export_workers=4)
        ended_span("s")
        autotrace.uninstall(timeout=2)
    assert export_threads() - before == set()


@pytest.mark.parametrize(("policy", "kept"), [("drop", ["acme"]), ("local", ["-", "acme", "stranger"])])
def test_the_local_store_keeps_only_what_the_unknown_tenant_policy_allows(
        policy: str, kept: list[str], tmp_path: Path) -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          local_store="on", local_store_path=tmp_path / "t.db", unknown_tenant=policy,
                          credentials={"acme": Credentials("pk", "sk", host=rx.endpoint)})
        ended_span("no tenant")
        ended_span("unknown tenant", "stranger")
        ended_span("known tenant", "acme")
        assert autotrace.flush(10)
        store = autotrace.local_store()
        assert store is not None
        assert sorted(o["tenant"] or "-" for o in store.observations()) == kept
        assert [s.name for s in rx.spans] == ["known tenant"]
    stats = autotrace.stats()
    dropped = 1 if policy == "drop" else 0
    assert stats.get("spans_dropped.no_tenant", 0) == stats.get("spans_dropped.unknown_tenant", 0) == dropped
