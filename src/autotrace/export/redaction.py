"""PII redaction: built-in detectors (``detectors``) plus user hooks, applied to every span before export.

Every value is redacted, whatever its type, and every attribute's key (a metadata key can be an
e-mail address): strings inside mappings (keys too) and sequences at any depth, bytes (as UTF-8
text, undecodable bytes kept as they are); a value nested too deep, too large or of another type
is replaced, never exported raw.

User hooks are called as ``hook(key, value, span_type)`` for every attribute (of the span, its
events and links), and for the texts that are not attributes under these keys: ``span.name``,
``event.name``, ``status.message``, ``score.name``, ``score.comment`` and ``score.value``
(``span_type`` is then ``score``). A hook that raises makes that value ``<REDACTION_FAILED>``: a raw value is never kept.
Inside a hook, ``redaction_tenant()`` names the tenant whose span or score it redacts (a policy per
customer); None for the resource and scope, which every tenant's spans share. Hooks run on the
pipeline thread: the calls they make are not traced (their spans are counted as
``spans_dropped.inside_export``), and ``flush()`` there cannot wait (False unless all is sent).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from .._internal import count, log_once
from ..bounds import HELD_MARK, MAX_VALUE_DEPTH, cut_value, truncate
from ..runtime import state
from ..schema import OBS_METADATA, TRACE_METADATA
from .detectors import BUILT_IN_KINDS, redact_text

RedactHook = Callable[[str, Any, str], Any]
#: The tenant whose span or score the hooks of this thread redact (``redaction_tenant``).
_redacting = threading.local()
FAILED = "<REDACTION_FAILED>"
#: The keys hooks see for texts that are not attributes.
SPAN_NAME, EVENT_NAME, STATUS_MESSAGE = "span.name", "event.name", "status.message"
SCORE_NAME, SCORE_COMMENT, SCORE_VALUE = "score.name", "score.comment", "score.value"
_SCALARS = frozenset({bool, int, float, type(None)})
#: Bounds on a structured value (a mapping or sequence): past them it is replaced, counted.
_MAX_DEPTH = MAX_VALUE_DEPTH
_MAX_ITEMS = 10_000

#: Structural attributes never redacted (ids, types, model names, usage and cost numbers).
DEFAULT_SKIP_KEYS = frozenset({
    "langfuse.observation.type", "langfuse.observation.level", "langfuse.observation.model.name",
    "langfuse.observation.usage_details", "langfuse.observation.cost_details",
    "langfuse.observation.completion_start_time", "langfuse.observation.prompt.name",
    "langfuse.observation.prompt.version", "langfuse.environment", "langfuse.release", "langfuse.version",
    "autotrace.tenant", "autotrace.replay_of", "gen_ai.request.model", "gen_ai.response.model",
    "gen_ai.operation.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.provider.name",
    "langfuse.observation.metadata.provider", "langfuse.observation.metadata.finish_reason",
})

#: Keys whose values are content, different on almost every span (never remembered).
_CONTENT_KEYS = frozenset({
    "langfuse.observation.input", "langfuse.observation.output", "langfuse.observation.status_message",
    STATUS_MESSAGE, SCORE_COMMENT,
})
_REMEMBERED_VALUES = 4096
_REMEMBERED_LENGTH = 512
#: Keys ending in a name the application chose: only the name is redacted (an e-mail's local part
#: would take the prefix's dotted words with it). Both end in ``.metadata.``.
_KEY_PREFIXES = (f"{OBS_METADATA}.", f"{TRACE_METADATA}.")


#: What the key of a secret ends with (``password``, ``http.request.header.authorization``, a metadata
#: key ``api_key``, ``clientSecret``, ``access_token``, Azure API Management's ``Ocp-Apim-Subscription-Key``;
#: not ``max_tokens``): a text under it in which the detectors find nothing (``Token 9944b0...``,
#: ``hunter22``) is replaced whole (``API_KEY``), if it is as long as an assignment's value must be (6
#: characters: not ``eos_token``'s ``</s>``).
_SECRET_KEY_ENDS = ("authorization", "password", "passwd", "secret", "apikey", "api_key", "api-key", "access_key",
                    "accesskey", "private_key", "privatekey", "secret_key", "token", "cookie", "subscription-key",
                    "subscription_key", "subscriptionkey")
_SECRET = "<API_KEY>"
_SECRET_BYTES = _SECRET.encode()
_NO_KEYS: frozenset[str] = frozenset()


def _names_a_secret(key: str) -> bool:
    return key.lower().endswith(_SECRET_KEY_ENDS)


def redaction_tenant() -> str | None:
    """Inside a redaction hook: the tenant of the span or score it redacts, so that a hook can apply
    one customer's policy (``return None`` for every input of a tenant whose contract allows no
    content to leave). None outside a hook, for a span with no tenant, and for resource and scope
    attributes (shared by every tenant's spans, redacted once)."""
    return getattr(_redacting, "tenant", None)


def redacting_for(tenant: str | None) -> None:
    """Name the tenant whose span or score this thread's hooks redact next (the pipeline's)."""
    _redacting.tenant = tenant


def _hook_name(hook: Any) -> str:
    """A hook as a log line names it: its qualified name, or its type's (a ``partial`` or a callable
    object), never its repr, which shows what it holds (the names or secrets it removes)."""
    name = getattr(hook, "__qualname__", None)
    return name if isinstance(name, str) else type(hook).__qualname__


@dataclasses.dataclass
class RedactionReport:
    replacements: int = 0
    hook_failures: int = 0
    failed_keys: list[str] = dataclasses.field(default_factory=list)


class Redactor:
    """Applies the built-in detectors, then each user hook, to span attributes."""

    def __init__(self, detectors: Iterable[str] | None = None, hooks: Sequence[RedactHook] = (),
                 skip_keys: frozenset[str] = DEFAULT_SKIP_KEYS) -> None:
        if detectors is None:
            self.kinds: frozenset[str] | None = None
        else:
            self.kinds = frozenset(d.upper() for d in detectors)
            unknown = self.kinds - BUILT_IN_KINDS
            if unknown:
                raise ValueError(f"unknown redaction detector(s) {sorted(unknown)}; known: {sorted(BUILT_IN_KINDS)}")
        self.hooks = tuple(hooks)
        self.skip_keys = skip_keys
        self.enabled = self.kinds is None or bool(self.kinds) or bool(self.hooks)
        self._detect = self.kinds is None or bool(self.kinds)
        self._by_key = self.kinds is None or "API_KEY" in self.kinds
        #: Detector results for short values of low-cardinality keys (names, parameters, URLs,
        #: metadata), which repeat from span to span. Bounded; only touched by the pipeline thread.
        self._known: dict[str, tuple[str, int]] = {}
        #: Attribute keys the detectors leave as they are and that name no secret (nearly all; they
        #: repeat): a span whose keys are all known needs one set operation for them. Bounded; pipeline
        #: thread only.
        self._clean_keys: set[str] = set(skip_keys)

    @classmethod
    def disabled(cls) -> Redactor:
        return cls(detectors=[])

    def _text(self, text: str, report: RedactionReport, repeats: bool, binary: bool = False) -> str:
        """``text`` with the detectors applied. A text held past the size limit for redaction
        (``hold``) that they changed is cut at the limit at once: it may have become too
        short for the pipeline to look at again, and its held end must never be exported."""
        if repeats and len(text) <= _REMEMBERED_LENGTH:
            found = self._known.get(text)
            if found is None:
                found = redact_text(text, self.kinds)
                if len(self._known) >= _REMEMBERED_VALUES:
                    self._known.clear()
                self._known[text] = found
        else:
            found = redact_text(text, self.kinds)
        report.replacements += found[1]
        if found[1] and not binary and text.endswith(HELD_MARK):
            return truncate(found[0], state.max_value_bytes)
        return found[0]

    def redact_text(self, text: str, key: str, span_type: str) -> str:
        """A text that is not an attribute (``key``: ``span.name``, ``status.message`` ...), with the
        detectors and then the hooks applied; a hook's failure makes it ``FAILED``, a drop empty."""
        if not self.hooks and key not in _CONTENT_KEYS:  # a span's name: most were seen before, left as they were
            found = self._known.get(text)
            if found is not None and not found[1]:
                return found[0]
        report = RedactionReport()
        if self.hooks:
            value = self.redact_value(key, text, span_type, report)
            result = "" if value is None else value if isinstance(value, str) else FAILED
        elif self._detect:
            result = self._text(text, report, key not in _CONTENT_KEYS)
        else:
            return text
        if report.replacements:
            count("redactions", report.replacements)
        return result

    def _builtin(self, value: Any, report: RedactionReport, repeats: bool = False) -> Any:
        if not self._detect:
            return value
        if type(value) is str:
            return self._text(value, report, repeats)
        if type(value) in _SCALARS:
            return value
        try:
            return self._structured(value, report, repeats, [_MAX_ITEMS], 0)
        except Exception:  # too deep, too large, or not a value OTLP carries: fail closed
            count("redaction_unsupported_values")
            return FAILED

    def _structured(self, value: Any, report: RedactionReport, repeats: bool, budget: list[int], depth: int) -> Any:
        """Any other value, its strings redacted at every depth (raises past the bounds)."""
        budget[0] -= 1
        if budget[0] < 0 or depth > _MAX_DEPTH:
            raise ValueError("value too large to redact")
        if type(value) in _SCALARS:
            return value
        if isinstance(value, str):  # its text: str() of a str-valued Enum member is its name
            return self._text(str.__str__(value), report, repeats)
        if isinstance(value, bool | int | float):
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            text = data.decode("utf-8", "surrogateescape")
            redacted = self._text(text, report, False, binary=True)
            if redacted == text:
                return data
            data = redacted.encode("utf-8", "surrogateescape")  # cut as bytes, if held (see ``_text``)
            return cut_value(data, state.max_value_bytes) if text.endswith(HELD_MARK) else data
        if isinstance(value, Mapping):
            mapping: dict[str, Any] = {}
            for key, item in value.items():
                name, new = str(key), self._structured(item, report, repeats, budget, depth + 1)
                secret = self._by_key and _names_a_secret(name)
                mapping[self._text(name, report, True)] = self._keyed(item, new, report) if secret else new
            return mapping
        if isinstance(value, Sequence):
            items = [self._structured(item, report, repeats, budget, depth + 1) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        raise TypeError(f"unsupported attribute value type {type(value).__name__}")

    def redact_value(self, key: str, value: Any, span_type: str, report: RedactionReport | None = None,
                     secret: bool | None = None) -> Any:
        """Redact one value (``secret``: whether ``key`` names one, if known); returns ``None`` when a
        hook asked to drop it."""
        report = report if report is not None else RedactionReport()
        redacted = self._builtin(value, report, key not in _CONTENT_KEYS)
        value = self._keyed(value, redacted, report) if (
            _names_a_secret(key) if secret is None else secret) and self._by_key else redacted
        for hook in self.hooks:
            try:
                value = hook(key, value, span_type)
            except Exception as exc:
                report.hook_failures += 1
                report.failed_keys.append(key)
                count("redaction_hook_failures")
                log_once(f"redact_hook:{id(hook)}", "autotrace: redaction hook %r raised %s; the affected values "
                         "are replaced, never exported raw", _hook_name(hook), type(exc).__name__)
                return FAILED
            if value is None:
                return None
        if self.hooks:  # what they returned, held past the limit, is cut at once as in ``_text``
            if isinstance(value, str):
                return truncate(value, state.max_value_bytes) if value.endswith(HELD_MARK) else value
            if type(value) not in _SCALARS:
                return cut_value(value, state.max_value_bytes)
        return value

    def _keyed(self, raw: Any, value: Any, report: RedactionReport) -> Any:
        """``value`` (``raw`` redacted by the detectors) under a key that names a secret: each of its
        texts in which they found nothing replaced whole (a header's list of values too; bytes, which
        they read as text, by the placeholder's bytes)."""
        if type(value) is str:
            if value == raw and len(value) >= 6 and value != _SECRET:  # (as long as an assignment's)
                report.replacements += 1
                return _SECRET
            return value
        if type(value) is bytes:
            if value == raw and len(value) >= 6 and value != _SECRET_BYTES:
                report.replacements += 1
                return _SECRET_BYTES
            return value
        if isinstance(value, list | tuple) and isinstance(raw, list | tuple) and len(raw) == len(value):
            items = [self._keyed(old, new, report) for old, new in zip(raw, value, strict=True)]
            return tuple(items) if isinstance(value, tuple) else items
        return value

    def _key(self, key: Any, report: RedactionReport) -> Any:
        """An attribute's key with the detectors applied: a metadata key can be an e-mail address."""
        if type(key) is not str or key in self._clean_keys:
            return key
        cut = key.index(".metadata.") + 10 if key.startswith(_KEY_PREFIXES) else 0
        redacted = key[:cut] + self._text(key[cut:], report, True)
        if redacted == key and not (self._by_key and _names_a_secret(key)):  # (a secret's: looked at every time)
            if len(self._clean_keys) >= _REMEMBERED_VALUES:
                self._clean_keys = set(self.skip_keys)
            self._clean_keys.add(key)
        return redacted

    def redact_attributes(self, attributes: Mapping[str, Any], span_type: str) -> tuple[dict[str, Any], RedactionReport]:
        """Attributes with their keys and values redacted (hooks see the keys redacted)."""
        report = RedactionReport()
        result: dict[str, Any] = {}
        skip_keys, plain = self.skip_keys, self._detect and not self.hooks
        secret_keys: frozenset[str] | set[str] = _NO_KEYS
        if self._detect and not self._clean_keys.issuperset(attributes):  # a key not seen before, or a secret's
            attributes = {self._key(key, report): value for key, value in attributes.items()}
            if self._by_key:
                secret_keys = {key for key in attributes if _names_a_secret(key)}
        known = self._known
        for key, value in attributes.items():
            if key in skip_keys and (type(value) is str or type(value) in _SCALARS):  # not a container
                result[key] = value
                continue
            if plain and type(value) is str:  # the common case, without redact_value's generality
                repeats = key not in _CONTENT_KEYS
                found = known.get(value) if repeats else None  # a value seen before, left as it was: as ``_text``
                result[key] = found[0] if found is not None and not found[1] else self._text(value, report, repeats)
                continue
            new = self.redact_value(key, value, span_type, report, key in secret_keys)
            if new is not None:
                result[key] = new
        for key in secret_keys:  # those the common case took (``redact_value`` saw to the others)
            value = attributes[key]
            if plain and type(value) is str and key not in skip_keys:
                result[key] = self._keyed(value, result[key], report)
        if report.replacements:
            count("redactions", report.replacements)
        return result, report
