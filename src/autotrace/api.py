"""The manual API: typed ``start_*`` observations and ``event``; the ``observe`` / ``traced_tool``
decorators (``decorators``) are exported from here too."""

from __future__ import annotations

from typing import Any

from . import recorder
from ._internal import guarded_failure
from .decorators import observe, span_name, traced_tool
from .observation import Observation, ObservationType

__all__ = ["event", "observe", "start_agent", "start_chain", "start_embedding", "start_evaluator",
           "start_generation", "start_guardrail", "start_observation", "start_retrieval", "start_span",
           "start_tool", "traced_tool"]


def start_observation(as_type: ObservationType | str, name: str, **fields: Any) -> Observation:
    """Start an observation of any type. Use it with ``with``/``async with`` to make it current,
    or call ``.end()`` yourself. Fields are those of ``Observation.update``."""
    obs_type = ObservationType(as_type)
    obs = recorder.start(obs_type, span_name(name, obs_type.value))
    if fields:
        obs.update(**fields)
    return obs


def start_generation(
    name: str, *, model: str | None = None, input: Any = None, model_parameters: dict[str, Any] | None = None,
    prompt: Any = None, metadata: dict[str, Any] | None = None, **fields: Any,
) -> Observation:
    """A model call: model, parameters, messages in, completion out, usage, cost, prompt version."""
    return start_observation(ObservationType.GENERATION, name, model=model, input=input,
                             model_parameters=model_parameters, prompt=prompt, metadata=metadata, **fields)


def start_embedding(
    name: str, *, model: str | None = None, input: Any = None, metadata: dict[str, Any] | None = None,
    **fields: Any,
) -> Observation:
    """An embedding call: model, input count, dimensions, usage."""
    return start_observation(ObservationType.EMBEDDING, name, model=model, input=input, metadata=metadata,
                             **fields)


def start_retrieval(
    name: str, *, query: Any = None, top_k: int | None = None, store: str | None = None,
    collection: str | None = None, metadata: dict[str, Any] | None = None, **fields: Any,
) -> Observation:
    """A retrieval: query, top_k, store and collection; set documents with ``update(documents=...)``
    or ``set_output``."""
    return start_observation(ObservationType.RETRIEVER, name, query=query, top_k=top_k, store=store,
                             collection=collection, metadata=metadata, **fields)


def start_tool(
    name: str, *, arguments: Any = None, metadata: dict[str, Any] | None = None, **fields: Any
) -> Observation:
    """A tool call: tool name, arguments, result."""
    fields.setdefault("tool_name", name)  # the caller may name the tool apart from the observation
    return start_observation(ObservationType.TOOL, name, arguments=arguments, metadata=metadata, **fields)


def start_guardrail(
    name: str, *, input: Any = None, metadata: dict[str, Any] | None = None, **fields: Any
) -> Observation:
    """A safety or policy check: input, output, ``passed``, ``modified``, ``reason``."""
    return start_observation(ObservationType.GUARDRAIL, name, input=input, metadata=metadata, **fields)


def start_chain(name: str, *, input: Any = None, metadata: dict[str, Any] | None = None, **fields: Any) -> Observation:
    """A pipeline step that links other steps."""
    return start_observation(ObservationType.CHAIN, name, input=input, metadata=metadata, **fields)


def start_agent(name: str, *, input: Any = None, metadata: dict[str, Any] | None = None, **fields: Any) -> Observation:
    """An agent turn: the step that decides which tools and models to use."""
    return start_observation(ObservationType.AGENT, name, input=input, metadata=metadata, **fields)


def start_span(name: str, *, input: Any = None, metadata: dict[str, Any] | None = None, **fields: Any) -> Observation:
    """A generic step."""
    return start_observation(ObservationType.SPAN, name, input=input, metadata=metadata, **fields)


def start_evaluator(name: str, *, input: Any = None, metadata: dict[str, Any] | None = None,
                    **fields: Any) -> Observation:
    """An evaluation step (its result can become a score, see ``observe(as_type="evaluator")``)."""
    return start_observation(ObservationType.EVALUATOR, name, input=input, metadata=metadata, **fields)


def event(name: str, *, input: Any = None, output: Any = None, metadata: dict[str, Any] | None = None,
          level: str | None = None) -> None:
    """Record a point-in-time event under the current observation."""
    try:
        obs = start_observation(ObservationType.EVENT, name, input=input, output=output, metadata=metadata,
                                level=level)
        obs.end()
    except Exception as exc:
        guarded_failure("event", exc)
