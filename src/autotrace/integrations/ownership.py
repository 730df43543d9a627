"""Which instrumentation records a call: the outermost one.

When a framework (LangChain, LlamaIndex) or another OpenTelemetry instrumentor already has a
generation, embedding or retrieval current, the inner integration (the OpenAI client, a vector
store) must not create a second observation for the same call. It may enrich the owner with the
fields the owner lacks, such as exact usage or the store's scores.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import OrderedDict
from types import FrameType
from typing import Any, Final

from opentelemetry import trace

from .._internal import count
from ..observation import Observation, ObservationType

#: Returned by ``owner`` when a span from another OTel instrumentation owns the call.
FOREIGN: Final = object()

_GEN_AI_OPERATIONS = {
    ObservationType.GENERATION: frozenset({"chat", "text_completion", "generate_content", "responses"}),
    ObservationType.EMBEDDING: frozenset({"embeddings"}),
    ObservationType.RETRIEVER: frozenset({"retrieval"}),
}


#: Frames of framework streams whose generation owns the calls made while they run -> that
#: generation (``own_while_running``); bounded, the oldest forgotten first (counted as
#: ``ownership_streams_evicted``: a call such a stream makes later gets an observation of its own).
_running: OrderedDict[FrameType, Observation] = OrderedDict()
_MAX_RUNNING = 1_000
#: How far up the stack a call looks for such a frame.
_MAX_DEPTH = 64
#: Owners whose usage came from a call they own (``enrich_reply``): the usage and cost of a later
#: one are added to theirs (one framework call may send several requests, as a batch of
#: embeddings does). Held weakly: an owner is forgotten with its observation.
_usage_from_calls: weakref.WeakSet[Observation] = weakref.WeakSet()
#: Held while a reply's usage is added (two replies to one owner must not both read the same total),
#: and while an owner's requests are counted (``counted_request``).
_summing = threading.Lock()
#: Owners -> how many model requests (chat, Responses) they have sent (``counted_request``). Held
#: weakly, like ``_usage_from_calls``.
_requests: weakref.WeakKeyDictionary[Observation, int] = weakref.WeakKeyDictionary()


def owner(kind: ObservationType) -> Observation | object | None:
    """The observation of ``kind`` that is current (ours, or ``FOREIGN`` for another library's
    span), else the one whose framework stream is running the call (``own_while_running``)."""
    span = trace.get_current_span()
    ours = getattr(span, "_autotrace_obs", None)
    if ours is not None:
        if ours.type is kind and not ours.ended:
            return ours
    elif span.is_recording():
        attributes = getattr(span, "attributes", None) or {}
        if attributes.get("langfuse.observation.type") == kind.value:
            return FOREIGN
        if attributes.get("gen_ai.operation.name") in _GEN_AI_OPERATIONS.get(kind, ()):
            return FOREIGN
    return _running_owner(kind) if _running else None


def own_while_running(stream: Any, obs: Observation) -> FrameType | None:
    """Have ``obs`` own the calls made while the generator ``stream`` runs: a framework LLM that
    returns a generator and starts its model call inside it, after its own span has exited (as
    LlamaIndex's OpenAI LLM does), still gets one generation per call. Returns the token for
    ``released``, to be given when the stream ends."""
    frame = getattr(stream, "gi_frame", None) or getattr(stream, "ag_frame", None)
    if frame is None:
        return None
    _running[frame] = obs
    try:
        while len(_running) > _MAX_RUNNING:
            _running.popitem(last=False)
            count("ownership_streams_evicted")
    except KeyError:  # emptied by another thread meanwhile
        pass
    return frame


def released(token: FrameType | None) -> None:
    """The stream of ``token`` has ended: the calls it makes are no longer owned."""
    if token is not None:
        _running.pop(token, None)


def _running_owner(kind: ObservationType) -> Observation | None:
    try:
        frame: FrameType | None = sys._getframe(2)
        for _ in range(_MAX_DEPTH):
            if frame is None:
                return None
            obs = _running.get(frame)
            if obs is not None:
                return obs if obs.type is kind and not obs.ended else None
            frame = frame.f_back
    except Exception:  # an interpreter without frames: no such owner
        pass
    return None


def enrich(obs: Observation, **fields: Any) -> None:
    """Add ``fields`` the owner does not have yet (metadata is merged key by key)."""
    current = obs.fields
    missing = {k: v for k, v in fields.items() if v is not None and (k == "metadata" or k not in current)}
    if "metadata" in missing:
        existing = current.get("metadata") or {}
        missing["metadata"] = {k: v for k, v in missing["metadata"].items() if k not in existing}
    if missing:
        obs.update(**missing)


def enrich_reply(obs: Observation, fields: dict[str, Any]) -> None:
    """Add what ``obs`` lacks of a reply's ``fields`` (model, usage, cost, finish reason ...), not
    the output: the owner records what its framework returns. The usage and cost of a second
    reply to the same owner are added to those of the first."""
    fields = {k: v for k, v in fields.items() if k != "output"}
    if not fields.get("usage"):
        enrich(obs, **fields)
        return
    with _summing:  # replies to one owner may come from several threads (a fan-out in a thread pool)
        current = obs.fields
        if obs in _usage_from_calls:
            obs.update(usage=_summed(current.get("usage"), fields.pop("usage")),
                       cost=_summed(current.get("cost"), fields.pop("cost", None)))
        elif "usage" not in current:
            _usage_from_calls.add(obs)
        enrich(obs, **fields)


def counted_request(obs: Observation) -> None:
    """Count a model request that ``obs`` owns. From the second on, ``obs`` records how many it
    sent (``metadata.model_requests``): no single recorded output answers each of them, so a
    replay runs them live (``recorded_requests``)."""
    with _summing:
        sent = _requests[obs] = _requests.get(obs, 0) + 1
    if sent > 1:
        obs.update(metadata={"model_requests": sent})


def recorded_requests(record: dict[str, Any] | None) -> int:
    """How many model requests a recorded owner sent, as far as its recording says: 1 unless it
    recorded more (``counted_request``)."""
    metadata = (record or {}).get("metadata")
    sent = metadata.get("model_requests") if isinstance(metadata, dict) else None
    return sent if type(sent) is int and sent > 1 else 1


def _summed(before: Any, added: Any) -> dict[str, Any] | None:
    """Two usage (or cost) dicts added key by key; None (nothing changed) unless both are dicts of numbers."""
    if not isinstance(before, dict) or not isinstance(added, dict):
        return None
    if not all(isinstance(v, int | float) for v in (*before.values(), *added.values())):
        return None
    return {key: before.get(key, 0) + added.get(key, 0) for key in {**before, **added}}
