"""Review 18: anyio's cancellation says which cancel scope (its address) and which task (its
coroutine's file and line) cancelled; a status message made of it differed on every run. It says
what it is, and the reason given, without them; asyncio's own cancellation messages are kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest
from mcp import Client

import autotrace
from autotrace.observation import describe_error
from tests.test_mcp import _install, _Recorder


async def _cancelled_by(cancel: str) -> BaseException:
    """The ``CancelledError`` a task gets when an anyio cancel scope is cancelled (``cancel``) or
    its deadline passes (``deadline``)."""
    caught: list[BaseException] = []

    async def waits() -> None:
        try:
            await anyio.sleep(3600)
        except BaseException as error:
            caught.append(error)
            raise

    if cancel == "deadline":
        with anyio.move_on_after(0.01):
            await waits()
    else:
        async with anyio.create_task_group() as group:
            group.start_soon(waits)
            await anyio.sleep(0.01)
            group.cancel_scope.cancel()
    return caught[0]


@pytest.mark.parametrize(("cancel", "expected"), [
    ("cancel", "CancelledError: Cancelled via cancel scope"),
    ("deadline", "CancelledError: Cancelled via cancel scope; reason: deadline exceeded"),
])
def test_an_anyio_cancellation_is_described_without_addresses_or_paths(cancel: str, expected: str) -> None:
    error = asyncio.run(_cancelled_by(cancel))
    assert "cancel scope" in str(error) and describe_error(error) == expected


def test_asyncios_own_cancellations_are_described_as_before() -> None:
    async def cancelled(message: str | None) -> BaseException:
        task = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.sleep(0)
        task.cancel(message)
        try:
            await task
        except asyncio.CancelledError as error:
            return error
        raise AssertionError("not cancelled")

    assert [describe_error(asyncio.run(cancelled(m))) for m in (None, "shutting down", "Cancelled by cancel scope")] \
        == ["CancelledError", "CancelledError: shutting down", "CancelledError: Cancelled by cancel scope"]


def test_a_server_handler_the_client_gave_up_on_has_one_status_message(tmp_path: Path) -> None:
    traced = _install(tmp_path)
    tools = _Recorder()

    async def turn() -> str:
        with autotrace.start_chain("turn") as root:
            async with Client(tools.server, mode="legacy") as client:
                for _ in range(2):
                    with pytest.raises(Exception, match="timed out"):
                        await client.call_tool("wait", {}, read_timeout_seconds=0.2)
            return root.trace_id

    records = traced.trace(asyncio.run(turn()))
    assert [(r["level"], r["status_message"]) for r in records if r["name"] == "wait"] == [
        ("WARNING", "CancelledError: Cancelled via cancel scope")] * 2
