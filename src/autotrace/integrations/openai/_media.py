"""OpenAI's audio and image endpoints as generations: speech to text (``audio.transcriptions``,
``audio.translations``), text to speech (``audio.speech``) and images (``images.generate``,
``edit``, ``create_variation``).

What is recorded of media is a short note of its kind and size, never its bytes: an uploaded
file as ``<audio/mpeg file call.mp3, 48213 bytes>``, generated speech as ``<audio/mpeg, 96000
bytes>`` (its size only once its body has been read: autotrace never reads a body the caller
reads), a generated image's base64 as ``<image/png base64, 1398101 chars>`` (its web address is
kept). Token usage (``gpt-4o-transcribe``, ``gpt-image-1``) is recorded as usage, the input
split by kind (``input_audio_tokens``, ``input_text_tokens``, ``input_image_tokens``); a duration
(``whisper-1``) as ``metadata.audio_seconds``, and speech's input text length (what ``tts-1`` is
priced by) as ``metadata.input_characters``, for Langfuse's usage counts carry no unit. Speech
has token usage only in a ``stream_format="sse"`` reply (its ``speech.audio.done`` event), read
from the body the SDK has already read; audio itself carries none.
"""

from __future__ import annotations

import io
import json
import mimetypes
import os
from typing import Any

from . import pricing

#: The operations of this module, by endpoint.
TRANSCRIPTION, TRANSLATION, SPEECH = "transcription", "translation", "speech"
IMAGE_GENERATION, IMAGE_EDIT, IMAGE_VARIATION = "image_generation", "image_edit", "image_variation"
_SPEECH_TO_TEXT = frozenset({TRANSCRIPTION, TRANSLATION})
_IMAGES = frozenset({IMAGE_GENERATION, IMAGE_EDIT, IMAGE_VARIATION})

#: Request keys recorded as model parameters (an image's ``prompt`` is its input, not one of them).
_PARAMETERS = frozenset({
    "language", "languages", "prompt", "response_format", "temperature", "timestamp_granularities", "include",
    "chunking_strategy", "keywords", "known_speaker_names", "stream", "voice", "speed", "instructions",
    "stream_format", "size", "quality", "n", "style", "background", "output_format", "output_compression",
    "moderation", "partial_images", "input_fidelity",
})
#: What an uploaded file is when neither the caller nor its name says.
_DEFAULT_KIND = {TRANSCRIPTION: "audio", TRANSLATION: "audio"}


def request_fields(operation: str, body: dict[str, Any], options: Any) -> dict[str, Any]:
    """Model parameters and input of an audio or image request; uploaded files (the request's
    multipart ``files``) as notes."""
    images = operation in _IMAGES
    params = {key: value for key, value in body.items()
              if key in _PARAMETERS and not (images and key == "prompt")}
    fields: dict[str, Any] = {"model": body.get("model"), "operation": operation,
                              "model_parameters": params or None}
    files = _file_notes(getattr(options, "files", None), _DEFAULT_KIND.get(operation, "image"))
    if operation in _SPEECH_TO_TEXT:
        fields["input"] = files.get("file")
    elif operation == SPEECH:
        fields["input"] = body.get("input")
    elif operation == IMAGE_GENERATION:
        fields["input"] = body.get("prompt")
    else:  # an edit or variation: the prompt (none for a variation) and the images given
        given = {"prompt": body.get("prompt"), **files} if "prompt" in body else files
        fields["input"] = given or None
    return fields


def _file_notes(files: Any, default_kind: str) -> dict[str, Any]:
    """The uploaded files by form field (``image[]`` as ``image``, a list), each as a note."""
    notes: dict[str, Any] = {}
    if not isinstance(files, list | tuple | dict):
        return notes
    for name, file in files.items() if isinstance(files, dict) else files:
        note = file_note(file, default_kind)
        if name.endswith("[]"):
            notes.setdefault(name[:-2], []).append(note)
        else:
            notes[name] = note
    return notes


def file_note(file: Any, default_kind: str) -> str:
    """``<audio/mpeg file call.mp3, 48213 bytes>`` for an upload (bytes, a file object, or the SDK's
    ``(name, content, content type)`` tuple); the content is measured, never read."""
    name, content, kind = None, file, None
    if isinstance(file, tuple) and file:
        name, content = file[0], file[1] if len(file) > 1 else None
        kind = file[2] if len(file) > 2 and isinstance(file[2], str) else None
    if name is None:
        name = getattr(content, "name", None)
    if not isinstance(name, str):
        name = None
    elif "/" in name or os.sep in name:
        name = os.path.basename(name)
    kind = kind or (mimetypes.guess_type(name)[0] if name else None) or default_kind
    size = _size(content)
    described = f"{kind} file {name}" if name else f"{kind} file"
    return f"<{described}, {size} bytes>" if size is not None else f"<{described}>"


def _size(content: Any) -> int | None:
    """The size of an upload's content without reading it: bytes, an in-memory buffer, an open file."""
    if isinstance(content, bytes | bytearray | memoryview):
        return len(content)
    try:
        if isinstance(content, io.BytesIO):
            return content.getbuffer().nbytes
        fileno = getattr(content, "fileno", None)
        if callable(fileno):
            return os.fstat(fileno()).st_size
    except (OSError, ValueError, io.UnsupportedOperation):  # a closed file, a pipe, a socket
        pass
    return None


def requested_model(options: Any) -> Any:
    """The model a request's ``options`` ask for: an audio or image response names none."""
    body = getattr(options, "json_data", None)
    return body.get("model") if isinstance(body, dict) else None


def _get(value: Any, name: str) -> Any:
    """A field of a parsed object, or of a dict (a field the SDK's model does not declare)."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def response_fields(operation: str, response: Any, model: Any) -> dict[str, Any]:
    """Output, usage and cost of an audio or image response; ``model`` is the requested model
    (these responses name none)."""
    if operation in _SPEECH_TO_TEXT:
        return _transcript_fields(response, model)
    if operation == SPEECH:
        return speech_fields(getattr(response, "response", None), model)
    data = _get(response, "data") or []
    usage = usage_fields(_get(response, "usage"))
    return {"output": [image_note(image, _get(response, "output_format")) for image in data],
            "usage": usage, "cost": pricing.media_cost(model, usage)}


def speech_fields(http_response: Any, model: Any) -> dict[str, Any]:
    """Speech: a note of its audio, its usage (a ``stream_format="sse"`` reply's), the length of
    the text sent, and its cost, from its HTTP response (``with_streaming_response``'s ``parse()``
    gives bytes, which say none of it: its observation needs the response the SDK read)."""
    usage = usage_fields(_speech_usage(http_response))
    characters = _input_characters(http_response)
    return {"output": speech_note(http_response), "usage": usage,
            "cost": pricing.media_cost(model, usage, characters=characters),
            "metadata": {"input_characters": characters} if characters is not None else None}


def _speech_usage(http_response: Any) -> Any:
    """The usage of a speech reply streamed as events (``stream_format="sse"``): its last event,
    ``speech.audio.done``, gives it. Only a body already read is looked at (never one the caller
    reads), and only an event stream's: audio bytes are not searched."""
    content = getattr(http_response, "__dict__", {}).get("_content")
    if not isinstance(content, bytes) or not str(http_response.headers.get("content-type") or "").startswith(
            "text/event-stream"):
        return None
    at = content.rfind(b'"speech.audio.done"')  # base64 audio has no quote: it cannot hold this
    if at < 0:
        return None
    end = content.find(b"\n", at)
    line = content[content.rfind(b"\n", 0, at) + 1:end if end >= 0 else len(content)].strip()
    try:
        event = json.loads(line[5:] if line.startswith(b"data:") else line)
    except ValueError:  # a line autotrace cannot read: no usage
        return None
    # the done event's own line (a line naming it as another field's value is not it)
    return event.get("usage") if isinstance(event, dict) and event.get("type") == "speech.audio.done" else None


def _input_characters(http_response: Any) -> int | None:
    """The length of the text a speech request sent (its ``input``, as the server got it, after
    ``extra_body`` and a replay's overrides), read from the request's body, which is bytes in memory."""
    request = getattr(http_response, "__dict__", {}).get("_request")
    content = getattr(request, "__dict__", {}).get("_content")
    if not isinstance(content, bytes):
        return None
    try:
        body = json.loads(content)
    except ValueError:  # a body that is no JSON (a compatible client's form): not counted
        return None
    text = body.get("input") if isinstance(body, dict) else None
    return len(text) if isinstance(text, str) else None


def _transcript_fields(response: Any, model: Any) -> dict[str, Any]:
    """A transcript: the text (as returned for ``text``/``srt``/``vtt``), its language and duration."""
    if isinstance(response, str):
        return {"output": response}
    counts = usage_fields(_get(response, "usage"))
    return {"output": _get(response, "text"), "usage": counts,
            "cost": pricing.media_cost(model, counts, _seconds(response)),
            "metadata": _transcript_metadata(response)}


def _seconds(response: Any) -> float | None:
    """The transcribed audio's duration: its usage when billed by duration, else ``verbose_json``'s."""
    usage = _get(response, "usage")
    seconds = _get(usage, "seconds") if _get(usage, "type") == "duration" else None
    if seconds is None:
        seconds = _get(response, "duration")
    return seconds if isinstance(seconds, int | float) and not isinstance(seconds, bool) else None


def _transcript_metadata(response: Any) -> dict[str, Any] | None:
    """What a transcript says of its audio, as metadata: its ``language`` and its duration
    (``audio_seconds``: Langfuse's usage counts carry no unit)."""
    found = (("language", _get(response, "language")), ("audio_seconds", _seconds(response)))
    return {key: value for key, value in found if value is not None} or None


def usage_fields(usage: Any) -> dict[str, int] | None:
    """Token usage of an audio or image response in Langfuse's keys, the input (and output) split
    by kind: ``input_audio_tokens``, ``input_text_tokens``, ``input_image_tokens`` ...; None for
    a duration (``whisper-1``) or no usage."""
    if usage is None or _get(usage, "input_tokens") is None:
        return None
    counts: dict[str, int] = {}
    is_count = pricing.is_count  # a negative count, ``true``, one past any counter: left out
    for key, name in (("input", "input_tokens"), ("output", "output_tokens"), ("total", "total_tokens")):
        if is_count(value := _get(usage, name)):
            counts[key] = value
    # a transcription's details are ``input_token_details``, an image's ``input_tokens_details``
    for side, names in (("input", ("input_token_details", "input_tokens_details")),
                        ("output", ("output_token_details", "output_tokens_details"))):
        details = next((found for name in names if (found := _get(usage, name)) is not None), None)
        for kind in ("audio_tokens", "text_tokens", "image_tokens"):
            if details is not None and is_count(value := _get(details, kind)):
                counts[f"{side}_{kind}"] = value
    return counts or None


def speech_note(http_response: Any) -> str | None:
    """``<audio/mpeg, 96000 bytes>``: the kind of the audio, and its size if its body has been read
    (for ``with_streaming_response``, the caller reads it: only its kind)."""
    if http_response is None:
        return None
    kind = str(http_response.headers.get("content-type") or "audio").split(";", 1)[0]
    content = getattr(http_response, "__dict__", {}).get("_content")  # set once read; never read here
    return f"<{kind}, {len(content)} bytes>" if isinstance(content, bytes) else f"<{kind}>"


def image_note(image: Any, output_format: Any) -> dict[str, Any]:
    """One generated image: its web address kept, its base64 noted by size, its revised prompt."""
    note: dict[str, Any] = {}
    if isinstance(url := _get(image, "url"), str):
        note["url"] = url
    if isinstance(data := _get(image, "b64_json"), str):
        note["b64_json"] = f"<image/{output_format or 'png'} base64, {len(data)} chars>"
    if isinstance(revised := _get(image, "revised_prompt"), str):
        note["revised_prompt"] = revised
    return note
