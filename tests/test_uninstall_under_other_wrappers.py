"""``uninstall()`` when another library has wrapped what autotrace patched, after it: the other
wrapper stays (old code put the original back over it, so that library's instrumentation was
silently gone). autotrace's own is taken from under a wrapt proxy, or left in place and counted."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import wrapt

import autotrace

ORIGINAL = ThreadPoolExecutor.__dict__["submit"]


@pytest.fixture
def restored() -> Iterator[list[str]]:
    """The calls the other library's wrapper saw; ``submit`` restored whatever the test did."""
    calls: list[str] = []
    try:
        yield calls
    finally:
        autotrace.uninstall()
        ThreadPoolExecutor.submit = ORIGINAL  # type: ignore[method-assign]


def _tenant_in_a_task() -> str | None:
    with autotrace.tenant("acme"), ThreadPoolExecutor(1) as pool:
        return pool.submit(autotrace.current_tenant).result()


def test_a_wrapt_wrapper_put_over_ours_stays_and_ours_is_taken_from_under_it(restored: list[str]) -> None:
    autotrace.install(local_store="off", integrations=("threads",))

    def other(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        restored.append("other")
        return wrapped(*args, **kwargs)

    wrapt.wrap_function_wrapper(ThreadPoolExecutor, "submit", other)
    outer = ThreadPoolExecutor.__dict__["submit"]
    assert _tenant_in_a_task() == "acme"  # both wrappers at work
    autotrace.uninstall()
    assert ThreadPoolExecutor.__dict__["submit"] is outer and outer.__wrapped__ is ORIGINAL
    assert _tenant_in_a_task() is None and restored == ["other", "other"]  # theirs still runs, ours not
    autotrace.install(local_store="off", integrations=("threads",))  # again, over theirs
    assert _tenant_in_a_task() == "acme"
    autotrace.uninstall()
    assert ThreadPoolExecutor.__dict__["submit"] is outer and outer.__wrapped__ is ORIGINAL
    assert autotrace.stats().get("integration_patch_kept.threads") is None


def test_a_plain_function_put_over_ours_stays_with_ours_under_it_counted(restored: list[str]) -> None:
    autotrace.install(local_store="off", integrations=("threads",))
    ours = ThreadPoolExecutor.__dict__["submit"]

    @functools.wraps(ours)
    def other(self: ThreadPoolExecutor, *args: Any, **kwargs: Any) -> Any:
        restored.append("other")
        return ours.__get__(self, type(self))(*args, **kwargs)

    ThreadPoolExecutor.submit = other  # type: ignore[method-assign]
    autotrace.uninstall()
    assert ThreadPoolExecutor.__dict__["submit"] is other  # the other library's instrumentation is not undone
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: 5).result() == 5 and restored == ["other"]
    assert autotrace.stats()["integration_patch_kept.threads"] == 1
