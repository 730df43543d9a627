"""Review 21 critique of values whose class makes attributes up (``__getattr__``): a proxy of a
model or an array (``wrapt.ObjectProxy``, a forwarding wrapper) was written as its text since mocks
are no longer asked for their made-up ``model_dump``; a proxy's methods are the wrapped object's,
bound to it, and are used again. A mock's or an RPC proxy's made-up attribute is still never called."""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import pydantic
import wrapt

import autotrace
from tests.helpers import Traced


class Answer(pydantic.BaseModel):
    text: str
    score: float


class _Forward:
    """A wrapper forwarding what it lacks to the object it wraps (as many SDK wrappers do)."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


class _Remote:
    """A client whose every attribute is a remote procedure (``xmlrpc.client.ServerProxy``-like)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return _Remote()
        return call

    def __repr__(self) -> str:
        return "<remote>"


def test_a_proxied_model_or_array_is_recorded_as_the_value_it_wraps(traced: Traced) -> None:
    answer = Answer(text="yes", score=0.5)

    @autotrace.observe
    def pick(first: Any, second: Any, vector: Any) -> Any:
        return wrapt.ObjectProxy(answer)

    result = pick(_Forward(answer), _Forward(np.array([1, 2])), wrapt.ObjectProxy(np.array([0.5, 1.5])))
    assert result == answer
    record = traced.one()
    assert record["input"] == {"first": {"text": "yes", "score": 0.5}, "second": [1, 2], "vector": [0.5, 1.5]}
    assert record["output"] == {"text": "yes", "score": 0.5}


def test_made_up_methods_are_still_never_called(traced: Traced) -> None:
    remote, reply = _Remote(), mock.MagicMock(name="reply")

    @autotrace.observe
    def ask(client: Any) -> Any:
        return reply

    assert ask(remote) is reply
    record = traced.one()
    assert record["input"] == {"client": "<remote>"}
    assert record["output"].startswith("<MagicMock name='reply' id='")
    assert (remote.calls, reply.mock_calls) == ([], [])
