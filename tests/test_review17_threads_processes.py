"""A process pool's worker serves every submitter: a task submitted outside traced work ran there
unwrapped, so a tenant set by an earlier task of that worker (a job that names its tenant from its
payload) was still current, and the task's spans went to that tenant. Every task now leaves the
worker as it found it (``integrations.processes``), as a thread pool's do."""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import autotrace
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("threads")


def _job(name: str, tenant: str | None) -> str | None:
    """A job that sets the tenant its payload names (if any), records a span, and ends."""
    if tenant is not None:
        autotrace.set_tenant(tenant)
    with autotrace.start_span(name):
        return autotrace.current_tenant()


def _install(traced: Traced, method: str) -> Callable[..., Any] | None:
    """The install a spawned worker runs first (a forked one is installed already)."""
    if method == "fork":
        return None
    return functools.partial(autotrace.install, local_store="on", local_store_path=traced.path,
                             integrations=("threads",), export_interval=0.05)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_job_s_tenant_never_stays_for_the_worker_s_next_untraced_job(traced: Traced, method: str) -> None:
    context = multiprocessing.get_context(method)
    install = _install(traced, method)
    with ProcessPoolExecutor(1, mp_context=context, initializer=install) as pool:
        seen = [pool.submit(_job, "executor-acme", "acme").result(timeout=60),
                pool.submit(_job, "executor-untraced", None).result(timeout=60)]
    with context.Pool(1, initializer=install) as processes:
        seen += [processes.apply(_job, ("pool-acme", "acme")), processes.apply(_job, ("pool-untraced", None))]
    assert seen == ["acme", None, "acme", None]
    records = {r["name"]: r["tenant"] for r in traced.records()}
    assert records == {"executor-acme": "acme", "executor-untraced": None, "pool-acme": "acme", "pool-untraced": None}


def test_an_untraced_job_runs_in_the_worker_s_own_state(traced: Traced) -> None:
    """A worker's own tenant (its initializer's) applies to untraced jobs, before and after another's."""
    fork = multiprocessing.get_context("fork")
    with fork.Pool(1, initializer=autotrace.set_tenant, initargs=("initech",)) as processes:
        seen = [processes.apply(_job, ("first", None)), processes.apply(_job, ("acme", "acme")),
                processes.apply(_job, ("after", None))]
        with autotrace.tenant("globex"):
            seen.append(processes.apply(_job, ("globex", None)))
    assert seen == ["initech", "acme", "initech", "globex"]
