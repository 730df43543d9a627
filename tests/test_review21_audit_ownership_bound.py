"""The framework streams that own the model calls made while they run (``ownership.own_while_running``)
are bounded: past ``_MAX_RUNNING`` the oldest is forgotten, and that is now counted: a call it makes
later gets an observation of its own."""

from __future__ import annotations

from collections.abc import Iterator

import autotrace
from autotrace import recorder
from autotrace.integrations import ownership
from autotrace.observation import Observation, ObservationType
from tests.helpers import Traced


def _stream() -> Iterator[object]:
    yield ownership.owner(ObservationType.GENERATION)  # what a model call starting here finds


def test_streams_past_the_bound_are_forgotten_and_counted(traced: Traced) -> None:
    extra = 3
    streams, tokens, generations = [], [], []
    try:
        for i in range(ownership._MAX_RUNNING + extra):
            generation = recorder.start(ObservationType.GENERATION, f"g{i}")
            stream = _stream()
            generations.append(generation)
            streams.append(stream)
            tokens.append(ownership.own_while_running(stream, generation))
        assert len(ownership._running) == ownership._MAX_RUNNING
        assert autotrace.stats().get("ownership_streams_evicted") == extra
        assert next(streams[0]) is None  # forgotten: its call is not its generation's
        owner = next(streams[-1])
        assert isinstance(owner, Observation) and owner is generations[-1]
    finally:
        for token in tokens:
            ownership.released(token)
        for generation in generations:
            generation.end()
    assert not ownership._running
