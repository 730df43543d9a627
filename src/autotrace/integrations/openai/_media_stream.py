"""Streams of the audio and image endpoints (``_media``): a transcript streamed as
``transcript.text.delta`` events and a final ``transcript.text.done`` (with usage), and images
streamed as partial images and a final ``*.completed`` event (with usage). Chat and Responses
streams never reach this module: a stream's state is picked once, when the stream is made.
"""

from __future__ import annotations

from typing import Any

from ... import bounds
from ...runtime import state as runtime
from . import _background, _media, pricing
from ._stream_state import StreamState


class MediaStreamState(StreamState):
    """What a transcription or image stream has produced: the transcript's pieces (or its final
    text), the final images (partial ones are previews: not recorded), and their usage."""

    __slots__ = ("done", "images")

    def __init__(self, operation: str, options: Any) -> None:
        super().__init__(operation, hide_usage_chunk=False, options=options)
        #: The final event's text (a transcript), None until it arrives.
        self.done: str | None = None
        self.images: list[Any] = []

    def _is_token(self, chunk: Any) -> bool:
        return getattr(chunk, "type", "") in _OUTPUT_EVENTS

    def _fold(self, chunks: list[Any]) -> None:
        for event in chunks:
            kind = getattr(event, "type", "")
            if kind == "transcript.text.delta":
                if isinstance(delta := getattr(event, "delta", None), str):
                    bounds.keep_piece(self.first.text, delta, runtime.max_value_bytes)
            elif kind == "transcript.text.done":
                self.done = getattr(event, "text", None)
                self.usage = getattr(event, "usage", None)
                self.first.finish_reason = "stop"
            elif kind.endswith(".completed"):
                self.images.append(_media.image_note(event, getattr(event, "output_format", None)))
                self.usage = getattr(event, "usage", None)
                self.first.finish_reason = "stop"

    def _unfinished(self) -> bool:
        return self.first.finish_reason is None

    def _fields(self) -> dict[str, Any]:
        self.fold()
        usage = _media.usage_fields(self.usage)
        if self.operation == _media.TRANSCRIPTION:
            output: Any = self.done if isinstance(self.done, str) else "".join(self.first.text)
        else:
            output = self.images
        cost = pricing.media_cost(_media.requested_model(self.options), usage)
        return {"output": output, "usage": usage, "cost": cost, "completion_start_time": self.first_token_ns}


#: Events that carry the first output: a transcript's first piece, an image (partial or final).
_OUTPUT_EVENTS = frozenset({"transcript.text.delta", "transcript.text.done", "image_generation.partial_image",
                            "image_generation.completed", "image_edit.partial_image", "image_edit.completed"})

#: The operations whose streams this module reads.
STATES = {_media.TRANSCRIPTION: MediaStreamState, _media.IMAGE_GENERATION: MediaStreamState,
          _media.IMAGE_EDIT: MediaStreamState}


def stream_state(operation: str, options: Any, hide_usage_chunk: bool, choices: int) -> StreamState:
    """The state of a new stream: this module's for an audio or image stream, a background
    Responses stream's (``_background``), else the chat's."""
    found = STATES.get(operation)
    if found is None:
        if operation == "responses" and _background.asked(options):
            return _background.CreatingState(options)
        return StreamState(operation, hide_usage_chunk, choices, options)
    return found(operation, options)
