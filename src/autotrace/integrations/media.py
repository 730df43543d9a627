"""What a recorded conversation keeps of inline media: the base64 payloads of images, audio and
files become a short note of their kind and size (``<image/png base64, 800022 chars>``), so one
image neither fills the recorded input to its size limit nor cuts off the conversation after it.
Text parts and web addresses are kept. A data URL, or the string of a field that only holds a
payload (``data``, ``file_data``, LangChain's ``base64``), is noted however short; any other long
string only if it starts as base64 does (the text of a part of another type, a reasoning item's
``reasoning_text``, a ``thinking`` block, is kept, its data URLs noted). A field's data URL is read
in any case, as browsers read it (``DATA:image/png;BASE64,``). Shared by the integrations that
record chat messages.
"""

from __future__ import annotations

import re
from typing import Any

#: Content part types that hold only text: their strings are the conversation, never a payload.
_TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal"})
#: Content parts that hold a tool call's arguments (Anthropic's, LangChain's): an argument named ``data`` is no payload.
_CALL_PARTS = frozenset({"tool_use", "server_tool_use", "tool_call"})
#: The shortest string of a media part taken for an inline payload when neither its form (a data
#: URL) nor its field (``_PAYLOAD_KEYS``) says it is one.
_MEDIA_MIN_CHARS = 1024
#: How a payload neither a data URL nor a payload field says is one starts: base64 (standard or
#: URL-safe, with MIME's line breaks), over its first ``_BASE64_CHECKED`` characters. Text has a
#: space, punctuation or a letter outside ASCII in far fewer.
_BASE64 = re.compile(r"[A-Za-z0-9+/=_\-\r\n]+")
_BASE64_CHECKED = 256
#: The fields of a media part that hold nothing but a payload (``base64``: LangChain's standard blocks').
_PAYLOAD_KEYS = frozenset({"data", "file_data", "base64"})
#: A base64 data URL inside a text (a markdown image, an HTML ``src``): its payload runs to the first
#: character that is not base64's or a JSON-escaped ``\/``, and on over line breaks (also as JSON's
#: ``\n``) to lines of at least 60 such characters (MIME's and PEM's; no text's words are as long;
#: a rule of ``-``, ``=`` or ``_`` is no payload) and a last line after them that ends a line or a
#: quote. Its media type and parameters (no ``:`` in them) are read possessively: a text of many
#: ``data:`` costs a step each, not a scan back over 200 characters from each.
_PAYLOAD = r"[A-Za-z0-9+/=_\-]*(?:\\/[A-Za-z0-9+/=_\-]*)*"
_BREAK = r"(?:\r?\n|(?:\\r)?\\n)"
_DATA_URL = re.compile(r"data:[^\s,;:\"'<>()]{0,200}+(?:;[^\s,;:\"'<>()]{0,200}+){0,8}?;base64," + _PAYLOAD
                       + rf"(?:(?:{_BREAK}(?=[A-Za-z0-9+/=_\-\\]{{60}})(?![=_\-]{{60}}){_PAYLOAD})+"  # full lines
                       + rf"(?:{_BREAK}{_PAYLOAD}(?=\r?\n|(?:\\r)?\\n|$|[\"')>\]]))?)?")  # a last one ending a line
#: How a field's data URL starts, in any case (``DATA:image/png;BASE64,``): a media type and its
#: parameters, none with a space, quote, bracket or brace, up to the comma its data follows. A text
#: that only starts with ``data:`` (``data: 42``, ``DATA:OK``, an event stream's ``data:{"id":1,...}``)
#: is none.
_DATA_URL_START = re.compile(r"data:[^\s,;:\"'<>(){}\[\]]*(?:;[^\s,;:\"'<>(){}\[\]]*)*,", re.IGNORECASE)
_DATA_URL_START_CHARS = 256
#: A data URL in a text this short is kept as written: a note would be hardly shorter, and a text about
#: data URLs (``data:image/png;base64,`` as an example in a question) would lose its subject.
_DATA_URL_KEPT = 128
#: A Responses output item holding a generated image (its base64 ``result``), given back as input.
_IMAGE_CALL = "image_generation_call"


def without_media(items: Any) -> Any:
    """Chat messages or Responses input items with the inline payloads of their media parts
    (base64 images, audio, files) replaced by a short note of their kind and size, so that one
    image neither fills the recorded input to its size limit nor cuts off the conversation after
    it: in a message's ``content``, in a tool call's result given as parts (a
    ``function_call_output``'s ``output`` list, a ``computer_call_output``'s screenshot), and in a
    reply given back as input (a chat message's spoken ``audio``, a Responses
    ``image_generation_call``'s ``result``). The caller's own list when there are none: for a text
    conversation, a few checks per item. A string (a Responses ``input`` or ``instructions``) is
    one message's text: its data URLs noted."""
    if type(items) is str:
        return without_data_urls(items)
    if type(items) is not list:
        return items
    for item in items:  # the common case, a text conversation, in one plain loop
        if type(item) is dict and (type(content := item.get("content")) is list or type(item.get("output")) in _PARTS
                                   or "audio" in item or item.get("type") == _IMAGE_CALL
                                   or (type(content) is str and ";base64," in content)
                                   or (type(output := item.get("output")) is str and ";base64," in output)):
            break
    else:
        return items
    found: list[Any] | None = None
    for index, item in enumerate(items):
        if type(item) is dict:
            kept = _item_without_media(item)
            if kept is not item:
                if found is None:
                    found = list(items)
                found[index] = kept
    return items if found is None else found


#: How a tool call's result may hold media: a list of parts, or one part (a screenshot).
_PARTS = (list, dict)


def _item_without_media(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with the payloads of its ``content`` parts, of its ``output`` parts, of its spoken
    ``audio`` (its transcript kept) and of a generated image's ``result`` noted; a string
    ``output`` (a tool's text result, however long) is kept, its data URLs noted as a message's."""
    kept = item
    content = item.get("content")
    if type(content) is list and (parts := _parts_without_media(content)) is not content:
        kept = {**kept, "content": parts}
    elif type(content) is str and (text := without_data_urls(content)) is not content:
        kept = {**kept, "content": text}  # a data URL pasted in the text (a scraped page's inline image)
    audio = item.get("audio")
    if type(audio) is dict and (note := media_note(audio.get("data"), payload=True)) is not None:
        kept = {**kept, "audio": {**audio, "data": note}}
    if item.get("type") == _IMAGE_CALL and (note := media_note(item.get("result"), payload=True)) is not None:
        kept = {**kept, "result": note}
    output = item.get("output")
    if type(output) is list:
        result: Any = _parts_without_media(output)
    elif type(output) is dict:
        result = _part_without_media(output)
    elif type(output) is str:  # a tool's text result (a ``function_call_output``'s): a screenshot's data URL in it
        result = without_data_urls(output)
    else:
        return kept
    return kept if result is output else {**kept, "output": result}


def _parts_without_media(parts: list[Any]) -> list[Any]:
    found: list[Any] | None = None
    for index, part in enumerate(parts):
        if type(part) is str:  # a LangChain message's content mixes plain texts with its blocks
            if ";base64," not in part or (kept := without_data_urls(part)) is part:
                continue
        elif type(part) is not dict or part.get("type") in _CALL_PARTS:
            continue
        elif part.get("type") in _TEXT_PARTS:
            text = part.get("text")
            if type(text) is not str or ";base64," not in text or (noted := without_data_urls(text)) is text:
                continue
            kept = {**part, "text": noted}
        else:
            kept = _part_without_media(part)
        if kept is not part:
            if found is None:
                found = list(parts)
            found[index] = kept
    return parts if found is None else found


def _part_without_media(part: dict[str, Any]) -> dict[str, Any]:
    """``part`` with its payload strings, at its top level or one level down (``image_url.url``,
    ``input_audio.data``, ``file.file_data``), noted; ``part`` itself if it has none, or if it is
    text (an Anthropic document's ``{"type": "text", "data": ...}`` source: its data is the text)."""
    if part.get("type") in _TEXT_PARTS:
        return part
    kept: dict[str, Any] | None = None
    for key, value in part.items():
        if type(value) is dict:
            inner = _part_without_media(value) if len(value) < 16 else value
            changed = inner is not value
        elif type(value) is list:  # parts inside a part: an Anthropic ``tool_result``'s content
            inner = _parts_without_media(value)
            changed = inner is not value
        else:
            inner = media_note(value, payload=key in _PAYLOAD_KEYS)
            if inner is None and type(value) is str:  # a text (a ``tool_result``'s): its data URLs
                inner = without_data_urls(value)
                changed = inner is not value
            else:
                changed = inner is not None
        if changed:
            if kept is None:
                kept = dict(part)
            kept[key] = inner
    return part if kept is None else kept


def media_note(value: Any, payload: bool = False) -> str | None:
    """A note in place of an inline payload (``<image/png base64, 123456 chars>``), None for
    anything else: web addresses (the image is fetched from there), and, unless they are data URLs
    or ``payload`` (a field that holds nothing else), strings shorter than ``_MEDIA_MIN_CHARS`` or
    that do not start as base64 does (text)."""
    if type(value) is not str or not value or value.startswith(("http://", "https://")):
        return None
    data_url = value[:5].lower() == "data:" and _DATA_URL_START.match(value, 0, _DATA_URL_START_CHARS) is not None
    if not data_url and not payload and (len(value) < _MEDIA_MIN_CHARS
                                         or _BASE64.fullmatch(value, 0, _BASE64_CHECKED) is None):
        return None
    kind = "base64"
    if data_url:
        comma = value.find(",", 5, 256)
        kind = value[5:comma].replace(";", " ") if comma > 5 else "data"
    return f"<{kind}, {len(value)} chars>"


def without_data_urls(text: str) -> str:
    """``text`` with each base64 data URL in it noted (its payload broken into lines too, by one note;
    the text around it kept: a question after the image); ``text`` itself if it has none. A text
    without ``;`` (most prose) is told in a ``memchr``: ``;base64,`` alone is sought at about a
    nanosecond a character in prose (its characters are prose's)."""
    if ";" not in text or ";base64," not in text:
        return text
    return _DATA_URL.sub(_noted, text)


def _noted(found: re.Match[str]) -> str:
    """A data URL found in a text, noted; one shorter than ``_DATA_URL_KEPT`` as it is written."""
    url = found.group()
    return url if len(url) < _DATA_URL_KEPT else media_note(url) or url
