"""Which instrumentation records a call: the outermost one.

When a framework (LangChain, LlamaIndex) or another OpenTelemetry instrumentor already has a
generation, embedding or retrieval current, the inner integration (the OpenAI client, a vector
store) must not create a second observation for the same call. It may enrich the owner with the
fields the owner lacks, such as exact usage or the store's scores.
"""

from __future__ import annotations

from typing import Any, Final

from opentelemetry import trace

from ..observation import Observation, ObservationType

#: Returned by ``owner`` when a span from another OTel instrumentation owns the call.
FOREIGN: Final = object()

_GEN_AI_OPERATIONS = {
    ObservationType.GENERATION: frozenset({"chat", "text_completion", "generate_content", "responses"}),
    ObservationType.EMBEDDING: frozenset({"embeddings"}),
    ObservationType.RETRIEVER: frozenset({"retrieval"}),
}


def owner(kind: ObservationType) -> Observation | object | None:
    """The observation of ``kind`` that is current (ours, or ``FOREIGN`` for another library's span)."""
    span = trace.get_current_span()
    ours = getattr(span, "_autotrace_obs", None)
    if ours is not None:
        return ours if ours.type is kind and not ours.ended else None
    if not span.is_recording():
        return None
    attributes = getattr(span, "attributes", None) or {}
    if attributes.get("langfuse.observation.type") == kind.value:
        return FOREIGN
    operation = attributes.get("gen_ai.operation.name")
    return FOREIGN if operation in _GEN_AI_OPERATIONS.get(kind, ()) else None


def enrich(obs: Observation, **fields: Any) -> None:
    """Add ``fields`` the owner does not have yet (metadata is merged key by key)."""
    current = obs.fields
    missing = {k: v for k, v in fields.items() if v is not None and (k == "metadata" or k not in current)}
    if "metadata" in missing:
        existing = current.get("metadata") or {}
        missing["metadata"] = {k: v for k, v in missing["metadata"].items() if k not in existing}
    if missing:
        obs.update(**missing)
