"""The fake OpenAI server's endpoints that answer about an input rather than continue it:
moderations, vector store searches and decisions (``client.decisions``)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .fake_media import tokens

if TYPE_CHECKING:
    from .fake_openai import Script


#: The moderation categories (the API's names), and the applied input types of those an image can carry.
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)
_IMAGE_CATEGORIES = frozenset({"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence",
                               "violence/graphic"})
#: Words that get an unscripted moderation input flagged, and for which category.
MODERATION_TRIGGERS = {"idiot": "harassment", "kill": "violence", "gore": "violence/graphic"}
#: What ``omni-moderation-latest`` (the default) and ``text-moderation-latest`` resolve to.
_MODERATION_MODELS = {"omni-moderation-latest": "omni-moderation-2024-09-26",
                      "text-moderation-latest": "text-moderation-007"}


#: The files a fake vector store holds: (file id, file name, text).
VECTOR_STORE_FILES = (
    ("file-refunds", "refunds.md", "Refunds are issued within 5 business days of the return."),
    ("file-shipping", "shipping.md", "Orders ship within 2 days; tracking arrives by email."),
    ("file-returns", "returns.md", "Returns are accepted within 30 days with the order number."),
)


def text_words(text: str) -> list[str]:
    return "".join(c.lower() if c.isalnum() else " " for c in text).split()


def _low_score(text: str, category: str) -> float:
    """A deterministic score well below any threshold (what a clean input gets)."""
    digest = hashlib.sha256(f"{category}:{text}".encode()).digest()
    return round(digest[0] / 255 * 0.001, 6)


def vector_store_search(files: list[tuple[str, str, str]], body: dict[str, Any]) -> dict[str, Any]:
    """The files sharing words with the query (a text or several), best first, scored by the
    share of the query's words each holds; at most ``max_num_results`` (10)."""
    query = body.get("query")
    queries = query if isinstance(query, list) else [str(query)]
    words = {word for text in queries for word in text_words(text)}
    scored = [(len(words & set(text_words(text))) / (len(words) or 1), file_id, name, text)
              for file_id, name, text in files]
    hits = sorted((hit for hit in scored if hit[0] > 0), key=lambda hit: -hit[0])
    data = [{"file_id": file_id, "filename": name, "score": round(score, 4), "attributes": {"lang": "en"},
             "content": [{"type": "text", "text": text}]}
            for score, file_id, name, text in hits[:int(body.get("max_num_results") or 10)]]
    rewritten = [" ".join(sorted(words))] if body.get("rewrite_query") else queries
    return {"object": "vector_store.search_results.page", "search_query": rewritten, "data": data,
            "has_more": False, "next_page": None}


def moderations(body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any]:
    """One result per text (one for all the parts of a multimodal input), scores in [0, 1]."""
    value = body.get("input")
    multimodal = isinstance(value, list) and bool(value) and isinstance(value[0], dict)
    if multimodal:
        texts = [" ".join(str(part.get("text", "")) for part in value if isinstance(part, dict))]
    else:
        texts = [str(item) for item in value] if isinstance(value, list) else [str(value)]
    image = multimodal and any(isinstance(part, dict) and part.get("type") == "image_url" for part in value)
    results = []
    for index, text in enumerate(texts):
        if script.flagged is not None:
            flagged = set(script.flagged[index]) if index < len(script.flagged) else set()
        else:
            words = set("".join(c.lower() if c.isalnum() else " " for c in text).split())
            flagged = {category for word, category in MODERATION_TRIGGERS.items() if word in words}
        results.append({
            "flagged": bool(flagged),
            "categories": {name: name in flagged for name in MODERATION_CATEGORIES},
            "category_scores": {name: 0.97 if name in flagged else _low_score(text, name)
                                for name in MODERATION_CATEGORIES},
            "category_applied_input_types": {
                name: ["text", "image"] if image and name in _IMAGE_CATEGORIES else ["text"]
                for name in MODERATION_CATEGORIES},
        })
    requested = body.get("model") or "omni-moderation-latest"
    model = script.model or _MODERATION_MODELS.get(requested, requested)
    return {"id": "modr-fake", "model": model, "results": results}


def decisions(body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any]:
    """``client.decisions``: each question answered in order (a predicate likely true, a choice
    its first, a score its first level), or refused when the script has a refusal; usage from the
    input and questions unless scripted."""
    answers: list[dict[str, Any]] = []
    questions = [q for q in body.get("questions") or [] if isinstance(q, dict)]
    for question in questions:
        kind, name = question.get("type"), question.get("name")
        if script.refusal is not None:
            answers.append({"type": "refusal", "name": name})
        elif kind == "choice":
            value = question["choices"][0]["value"]
            answers.append({"type": "choice", "name": name, "choice": value, "confidence": 0.8,
                            "probabilities": [{"value": value, "probability": 0.8}]})
        elif kind == "score":
            label = question["levels"][0]["label"]
            answers.append({"type": "score", "name": name, "score": 1.0, "confidence": 0.7,
                            "probabilities": [{"label": label, "value": 1, "probability": 0.7}]})
        else:
            answers.append({"type": "predicate", "name": name, "probability": 0.9})
    input_tokens, output_tokens = script.usage or (tokens(str(body.get("input"))) + tokens(str(questions)),
                                                   len(questions))
    return {"model": script.model or body.get("model", "gpt-6-luna"), "answers": answers,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "total_tokens": input_tokens + output_tokens,
                      "input_tokens_details": {"cached_tokens": script.cached_tokens,
                                               "cache_write_tokens": script.cache_write_tokens},
                      "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens}}}
