"""The fake OpenAI server's audio and image endpoints (transcriptions, translations, speech, image
generation, edits and variations), and the helpers its payloads share with the others."""

from __future__ import annotations

import base64
import dataclasses
import email.parser
import email.policy
import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any


def tokens(text: str) -> int:
    """A rough token count: words, plus the few a message adds."""
    return len(text.split()) + 3


def split(text: str, n: int) -> list[str]:
    """``text`` in ``n`` consecutive pieces (some empty when the text is shorter than ``n``)."""
    n = max(1, n)
    return [text[len(text) * i // n: len(text) * (i + 1) // n] for i in range(n)]


@dataclasses.dataclass
class Reply:
    """A reply body that is no JSON: speech audio, or a transcript as plain text (``srt``, ``text``)."""

    data: bytes
    content_type: str


#: The audio formats of speech, as content types.
AUDIO_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                "wav": "audio/wav", "pcm": "audio/pcm"}


def form(content_type: str, raw: bytes) -> dict[str, Any]:
    """A multipart form as a request body: each field's text, each file as its name, content type
    and size (``{"filename", "content_type", "bytes"}``); a repeated field (``image[]``) as a list."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    body: dict[str, Any] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        value: Any = ({"filename": filename, "content_type": part.get_content_type(), "bytes": len(payload)}
                      if filename is not None else payload.decode())
        if name.endswith("[]"):
            body.setdefault(name[:-2], []).append(value)
        else:
            body[name] = value
    return body


def transcriptions(body: dict[str, Any], script: Any, chunks: int) -> dict[str, Any] | Reply | Iterator[Any]:
    """A transcript (or translation) of the uploaded file: ``whisper-1`` reports the audio's
    duration as usage, other models tokens; ``text``/``srt``/``vtt`` answer plain text."""
    model = script.model or body.get("model", "whisper-1")
    upload = body.get("file") or {}
    text = script.reply if script.reply is not None else f"transcript of {upload.get('filename')}"
    audio_tokens, output_tokens = script.usage or (max(1, upload.get("bytes", 0) // 100), tokens(text))
    usage: dict[str, Any] = (
        {"type": "duration", "seconds": script.seconds} if model == "whisper-1" else
        {"type": "tokens", "input_tokens": audio_tokens + 2, "output_tokens": output_tokens,
         "total_tokens": audio_tokens + 2 + output_tokens,
         "input_token_details": {"text_tokens": 2, "audio_tokens": audio_tokens}})
    response_format = body.get("response_format", "json")
    if response_format in ("text", "srt", "vtt"):
        return Reply((text if response_format == "text" else f"1\n00:00:00,000 --> 00:00:04,200\n{text}\n")
                     .encode() + b"\n", "text/plain; charset=utf-8")
    if body.get("stream") == "true":
        def events() -> Iterator[Any]:
            for piece in split(text, chunks):
                yield {"type": "transcript.text.delta", "delta": piece}
            yield {"type": "transcript.text.done", "text": text, "usage": usage}

        return events()
    if response_format == "verbose_json":
        return {"task": "transcribe", "language": "english", "duration": script.seconds, "text": text,
                "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": script.seconds, "text": text,
                              "tokens": [1, 2], "temperature": 0.0, "avg_logprob": -0.2,
                              "compression_ratio": 1.1, "no_speech_prob": 0.01}], "usage": usage}
    return {"text": text, "usage": usage}

def speech(body: dict[str, Any], script: Any, chunks: int) -> Reply:
    """Speech: deterministic bytes, 40 per character of the input, in the asked format; with
    ``stream_format="sse"``, events: the audio's base64 in ``chunks`` ``speech.audio.delta``
    events, then ``speech.audio.done`` with usage (input tokens, and 4 audio tokens a character)."""
    audio_format = body.get("response_format", "mp3")
    text = str(body.get("input"))
    data = (hashlib.sha256(text.encode()).digest() * (len(text) * 40 // 32 + 1))[:len(text) * 40]
    if body.get("stream_format") != "sse":
        return Reply(data, AUDIO_TYPES.get(audio_format, "audio/mpeg"))
    input_tokens, output_tokens = script.usage or (tokens(text), len(text) * 4)
    events: list[dict[str, Any]] = [{"type": "speech.audio.delta", "audio": piece}
                                    for piece in split(base64.b64encode(data).decode(), chunks) if piece]
    events.append({"type": "speech.audio.done", "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                                                          "total_tokens": input_tokens + output_tokens}})
    return Reply("".join(f"data: {json.dumps(event)}\n\n" for event in events).encode(), "text/event-stream")

def images(body: dict[str, Any], script: Any, chunks: int) -> dict[str, Any] | Iterator[Any]:
    """Images: ``dall-e-*`` give web addresses (``dall-e-3`` a revised prompt), other models base64
    bytes (named as in the asked ``output_format``, ``png`` by default) and token usage; a stream
    gives ``partial_images`` partial images, then the last."""
    model = script.model or body.get("model", "dall-e-2")
    count_ = int(body.get("n") or 1)
    prompt = str(body.get("prompt", ""))
    legacy = model.startswith("dall-e")
    output_format = str(body.get("output_format") or "png")  # as the API answers: the format asked
    base64_json = not legacy or body.get("response_format") == "b64_json"
    picture = base64.b64encode(b"\x89PNG\r\n" + hashlib.sha256(prompt.encode()).digest() * 40).decode()
    data = []
    for index in range(count_):
        image: dict[str, Any] = {"b64_json": picture} if base64_json else {
            "url": f"https://images.example/{index}.png"}
        if model == "dall-e-3":
            image["revised_prompt"] = script.reply or f"A detailed picture of {prompt}"
        data.append(image)
    input_tokens, output_tokens = script.usage or (tokens(prompt), 272 * count_)
    images_in = len(body.get("image") or []) if isinstance(body.get("image"), list) else int("image" in body)
    usage = {"input_tokens": input_tokens + 65 * images_in, "output_tokens": output_tokens,
             "total_tokens": input_tokens + 65 * images_in + output_tokens,
             "input_tokens_details": {"text_tokens": input_tokens, "image_tokens": 65 * images_in}}
    if body.get("stream") in (True, "true"):
        kind = "image_edit" if "image" in body else "image_generation"
        common = {"background": "opaque", "created_at": 1, "output_format": output_format, "quality": "low",
                  "size": "1024x1024"}

        def events() -> Iterator[Any]:
            for index in range(int(body.get("partial_images") or 0)):
                yield {"type": f"{kind}.partial_image", "b64_json": picture[:64], "partial_image_index": index,
                       **common}
            yield {"type": f"{kind}.completed", "b64_json": picture, "usage": usage, **common}

        return events()
    response: dict[str, Any] = {"created": int(time.time()), "data": data}
    if not legacy:
        response.update(usage=usage, output_format=output_format, quality="low", size=body.get("size", "1024x1024"),
                        background="opaque")
    return response
