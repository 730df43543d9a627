"""LangChain embedding models (``Embeddings.embed_query``/``embed_documents`` and their async
twins), which send no callback: without this an embedding through a HuggingFace, Ollama or fake
class made no observation at all.

The embedding methods of ``Embeddings`` and of each subclass that defines its own are wrapped: a
call is an ``embedding`` observation named ``<Class>.embed_query`` or ``<Class>.embed_documents``
(an async method under its sync name, ``metadata.operation`` the method called) with the text or
texts as input, ``input_count``, the model (the instance's ``model``, ``model_name`` or
``model_id`` when a string; for a wrapper without one, such as ``CacheBackedEmbeddings``, that of
its ``underlying_embeddings`` or of the model it calls) and, as the OpenAI integration records
embeddings, ``dimensions`` and an output of ``{"count": vectors}`` (not the vectors). The method
is named as the class defines it, whatever its function is called. It is current while it runs: an
OpenAI SDK request inside (``OpenAIEmbeddings``) only enriches it (usage, cost, response model;
``ownership``), and inside another embedding (``embed_query`` calling ``embed_documents``, an
async method running the sync one) nothing more is recorded. Inside a retriever or a direct
store search it nests under that retriever. Classes defined after ``install()`` are wrapped as
they are defined.
"""

from __future__ import annotations

from typing import Any

from .. import recorder
from ..observation import Observation, ObservationType
from . import ownership
from .base import Patcher
from .class_family import ClassFamilyPatches, FamilyCall

#: The embedding methods, sync then async; ``*_query`` takes one text, ``*_documents`` a list.
METHODS = ("embed_query", "embed_documents", "aembed_query", "aembed_documents")
#: Instance attributes naming the model, in the order real classes use them (OpenAI, Ollama,
#: Cohere: ``model``; HuggingFace, Vertex AI, FastEmbed: ``model_name``; Bedrock: ``model_id``).
_MODEL_ATTRIBUTES = ("model", "model_name", "model_id")
#: The attribute of a caching wrapper holding the model it wraps (LangChain's ``CacheBackedEmbeddings``).
_WRAPPED = "underlying_embeddings"


class _Call(FamilyCall):
    """One embedding call: its observation is current while the model runs."""

    __slots__ = ("query",)
    failure = "langchain.embeddings"

    def start(self, instance: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
        self.query = method.endswith("query")
        outer = ownership.owner(ObservationType.EMBEDDING)
        if outer is not None:  # an outer embedding (a caching wrapper, say) records it: the model is ours
            if isinstance(outer, Observation):
                ownership.enrich(outer, model=_model(instance))
            return None
        value = args[0] if args else kwargs.get("text" if self.query else "texts")
        return recorder.start_with(ObservationType.EMBEDDING, f"{type(instance).__name__}.{method.removeprefix('a')}",
                                   self.failure, model=_model(instance), input=value, metadata={"operation": method},
                                   input_count=1 if self.query else _size(value))

    def result_fields(self, result: Any) -> dict[str, Any]:
        vectors = [result] if self.query else result
        count = _size(vectors)
        first = vectors[0] if count else None
        return {"output": {"count": count}, "dimensions": _size(first) or None}


def _model(instance: Any, outer: bool = True) -> str | None:
    """The model an instance names, else the one of the model it wraps (``CacheBackedEmbeddings``)."""
    for name in _MODEL_ATTRIBUTES:
        value = getattr(instance, name, None)
        if isinstance(value, str) and value:
            return value
    inner = getattr(instance, _WRAPPED, None) if outer else None
    return None if inner is None else _model(inner, outer=False)


def _size(value: Any) -> int | None:
    """``len(value)`` for a list, tuple or array; None for anything else."""
    return len(value) if hasattr(value, "__len__") and not isinstance(value, str | bytes | dict) else None


def embedding_patches(patcher: Patcher) -> ClassFamilyPatches:
    """The embedding methods of ``Embeddings`` and its subclasses, wrapped from when the application
    first imports LangChain's embeddings (never before)."""
    return ClassFamilyPatches(patcher, "langchain_core.embeddings.embeddings", "Embeddings", METHODS[:2], METHODS[2:],
                              _Call, "langchain.embeddings_patch")
