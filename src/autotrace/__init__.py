"""autotrace: typed, multi-tenant tracing for LLM agent pipelines.

``autotrace.install()`` at start-up patches the libraries it finds; the ``start_*`` context
managers and the ``observe`` / ``traced_tool`` decorators cover the rest.
"""

from typing import TYPE_CHECKING, Any

from ._internal import reset_stats, stats
from .api import (
    event,
    observe,
    start_agent,
    start_chain,
    start_embedding,
    start_evaluator,
    start_generation,
    start_guardrail,
    start_observation,
    start_retrieval,
    start_span,
    start_tool,
    traced_tool,
)
from .config import ConfigError, Settings
from .context import (
    content_capture,
    current_tenant,
    reset_tenant,
    set_tenant,
    tenant,
    trace_attributes,
)
from .export.redaction import redaction_tenant
from .install import flush, install, local_store, shutdown, uninstall
from .observation import Observation, ObservationType
from .recorder import __version__, current_observation
from .scores import score

if TYPE_CHECKING:
    from .integrations.openai.pricing import set_prices
    from .stats_metrics import stats_as_metrics


def __getattr__(name: str) -> Any:
    """``set_prices`` (the OpenAI integration's) and ``stats_as_metrics``, imported when first asked
    for: ``import autotrace`` loads neither the integration (tens of milliseconds) nor the metrics API."""
    if name == "set_prices":
        from .integrations.openai.pricing import set_prices

        return set_prices
    if name == "stats_as_metrics":
        from .stats_metrics import stats_as_metrics

        return stats_as_metrics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Observation",
    "ObservationType",
    "Settings",
    "__version__",
    "content_capture",
    "current_observation",
    "current_tenant",
    "event",
    "flush",
    "install",
    "local_store",
    "observe",
    "redaction_tenant",
    "reset_stats",
    "reset_tenant",
    "score",
    "set_prices",
    "set_tenant",
    "shutdown",
    "start_agent",
    "start_chain",
    "start_embedding",
    "start_evaluator",
    "start_generation",
    "start_guardrail",
    "start_observation",
    "start_retrieval",
    "start_span",
    "start_tool",
    "stats",
    "stats_as_metrics",
    "tenant",
    "trace_attributes",
    "traced_tool",
    "uninstall",
]
