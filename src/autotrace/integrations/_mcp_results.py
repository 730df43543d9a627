"""What an MCP result records: a tool's output (its structured content, else its text), a read's
documents, a prompt's messages; images, audio and binary resources as a note of their kind and
size, never their base64. Each reads the SDK's models or the raw dicts a server handler may return.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..context import capture_enabled
from .documents import document, recorded

Fields = dict[str, Any]


def get(item: Any, attribute: str, key: str) -> Any:
    """``item``'s field, whether the SDK's model or the raw dict a server handler may return."""
    return item.get(key) if isinstance(item, Mapping) else getattr(item, attribute, None)


def _part_text(part: Any) -> str:
    """A content block as text: its text, or a note of the kind and size of a payload."""
    kind = get(part, "type", "type")
    if kind == "text":
        return str(get(part, "text", "text"))
    if kind in ("image", "audio"):
        data = get(part, "data", "data")
        return f"<{get(part, 'mime_type', 'mimeType') or kind} base64, {len(data) if isinstance(data, str) else 0} chars>"
    if kind == "resource_link":
        return f"<resource_link {get(part, 'uri', 'uri')}>"
    if kind == "resource":
        resource = get(part, "resource", "resource")
        text = get(resource, "text", "text")
        if isinstance(text, str):
            return text
        blob = get(resource, "blob", "blob")
        mime = get(resource, "mime_type", "mimeType") or "resource"
        return f"<{mime} base64, {len(blob) if isinstance(blob, str) else 0} chars: {get(resource, 'uri', 'uri')}>"
    return f"<{kind}>"


def tool_outcome(result: Any) -> tuple[Fields, str | None]:
    """A tool result's output (its structured content, else its text) and, when it reports an
    error (``isError``), its message: its text only while content is captured, as its output."""
    content = get(result, "content", "content")
    text = "\n".join(_part_text(part) for part in content) if isinstance(content, list) else None
    structured = get(result, "structured_content", "structuredContent")
    output = structured if structured is not None else text
    if get(result, "is_error", "isError") is True:
        return {"result": output}, text if text and capture_enabled() else "the tool reported an error"
    return {"result": output}, None


def _blob_bytes(blob: Any) -> int:
    """The size in bytes of base64 text, without decoding it."""
    return len(blob.rstrip("=")) * 3 // 4 if isinstance(blob, str) else 0


def _resource_document(contents: Any) -> Fields:
    """One resource content as a retrieved document: its URI, the start of its text, or its
    blob's MIME type and size (never the blob)."""
    uri, mime = get(contents, "uri", "uri"), get(contents, "mime_type", "mimeType")
    text = get(contents, "text", "text")
    if isinstance(text, str):
        return document(uri, content=text, metadata={"mime_type": mime} if mime else None)
    return document(uri, metadata={"mime_type": mime, "bytes": _blob_bytes(get(contents, "blob", "blob"))})


def read_outcome(result: Any) -> tuple[Fields, str | None]:
    """A read's contents as documents (the first ``MAX_DOCUMENTS``) and their count."""
    contents = get(result, "contents", "contents")
    if not isinstance(contents, list):
        return {}, None
    kept, noted = recorded(contents, len(contents))
    return {"documents": [_resource_document(item) for item in kept], "doc_count": len(contents),
            "metadata": noted or None}, None


def prompt_outcome(result: Any) -> tuple[Fields, str | None]:
    """A prompt's messages: role and text (other content noted by kind and size)."""
    messages = get(result, "messages", "messages")
    if not isinstance(messages, list):
        return {}, None
    output = []
    for message in messages:
        content = get(message, "content", "content")
        parts = content if isinstance(content, list) else [content]
        output.append({"role": get(message, "role", "role"), "content": "\n".join(_part_text(p) for p in parts)})
    return {"output": output}, None
