"""The loopback fakes the tests run against take a burst of concurrent clients: socketserver's
default listen backlog (5) overflowed under some tens of concurrent streams, and the kernel reset
the connections it could not queue (``APIConnectionError`` in the test, as if autotrace had failed)."""

from __future__ import annotations

import asyncio

import openai

from autotrace.testing.fake_openai import FakeOpenAI


def test_the_fake_openai_server_serves_a_burst_of_concurrent_streams() -> None:
    async def burst(client: openai.AsyncOpenAI, size: int) -> list[object]:
        async def one() -> str:
            stream = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}],
                                                          stream=True)
            return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

        return await asyncio.gather(*[one() for _ in range(size)], return_exceptions=True)

    async def bursts() -> list[object]:
        with FakeOpenAI() as fake:
            client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
            replies: list[object] = []
            for _ in range(8):
                replies += await burst(client, 64)
            await client.close()
            return replies

    replies = asyncio.run(bursts())
    assert [r for r in replies if not isinstance(r, str)] == []
    assert len(set(replies)) == 1 and len(replies) == 8 * 64
