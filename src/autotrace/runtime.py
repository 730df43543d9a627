"""The process-wide state of the current ``install()``: read by the hot path, replaced by install/uninstall."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings
    from .export.pipeline import SpanPipeline


class Runtime:
    """Mutable holder for what the hot path needs; a single instance lives in this module."""

    __slots__ = ("capture_content", "max_value_bytes", "pipeline", "provider", "settings", "stream_usage")

    def __init__(self) -> None:
        self.settings: Settings | None = None
        self.pipeline: SpanPipeline | None = None
        self.provider: Any = None
        self.capture_content = True
        self.stream_usage = True
        self.max_value_bytes = 64 * 1024


state = Runtime()
