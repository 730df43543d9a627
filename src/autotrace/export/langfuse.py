"""Langfuse as an export target: the OTLP endpoint, authentication and ingestion headers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from .. import schema
from .._internal import count, log_once
from ..config import ENVIRONMENT_NAME
from .connections import ConnectionPool
from .credentials import Credentials
from .otlp_http import MAX_REQUEST_BYTES, HttpTarget, OtlpHttpSink
from .sink import OK, SinkResult, split

OTLP_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"
INGESTION_VERSION = "4"
#: Statuses that refuse one score's content, not the endpoint or the keys: that score alone is
#: dropped, and the batch's other scores still sent.
_SCORE_REFUSED = frozenset({400, 409, 413, 422})
#: Where a replay marks a call it did not run (``metadata.replay``, a JSON text as ``schema`` writes metadata).
_REPLAY_MARK = f"{schema.OBS_METADATA}.replay"
#: What a frozen call spent, as Langfuse is told: nothing, explicitly (no usage would be priced, or counted
#: by tokenizing its text); the recorded usage and cost stay in the local store, marked ``frozen``.
_UNSPENT = {schema.OBS_USAGE: '{"input": 0, "output": 0, "total": 0}', schema.OBS_COST: '{"total": 0.0}'}
#: Where Langfuse reads a span's environment, the first set wins: each key in the span's attributes,
#: then in its resource's (``deployment.environment`` from ``OTEL_RESOURCE_ATTRIBUTES``, say).
_ENVIRONMENT_KEYS = (schema.ENVIRONMENT, "deployment.environment.name", "deployment.environment")
_DEPLOYMENT_KEYS = _ENVIRONMENT_KEYS[1:]
#: Environment names seen to be ones Langfuse takes (most spans carry the installed one); bounded.
_TAKEN: set[str] = set()
_MAX_TAKEN = 64
#: The last resource seen, its values of ``_ENVIRONMENT_KEYS`` and what to send for them (``_replacement``).
_last_resource: tuple[Any, tuple[Any, ...], str | None] = (object(), (), None)


def langfuse_headers(credentials: Credentials) -> dict[str, str]:
    """Headers the Langfuse OTLP endpoint expects; the key pair alone selects the project."""
    return {
        "Authorization": credentials.authorization_header(),
        "x-langfuse-public-key": credentials.public_key,
        "x-langfuse-ingestion-version": INGESTION_VERSION,
        "x-langfuse-sdk-name": "autotrace",
    }


class LangfuseSink(OtlpHttpSink):
    """OTLP export into one Langfuse project, identified by ``credentials``."""

    def __init__(self, host: str, credentials: Credentials, timeout: float = 10.0, name: str = "langfuse",
                 max_request_bytes: int = MAX_REQUEST_BYTES, pool: ConnectionPool | None = None) -> None:
        super().__init__(host.rstrip("/") + OTLP_PATH, langfuse_headers(credentials), timeout, name, max_request_bytes,
                         pool)
        #: Where this sink sends; fixed for its lifetime (a new host needs a new sink).
        self.host = host.rstrip("/")
        self.fingerprint = credentials.fingerprint
        self.public_key = credentials.public_key  # the project it writes to (the keys' public half)
        self._scores = HttpTarget(host.rstrip("/") + SCORES_PATH, timeout, pool)
        self._auth = credentials.authorization_header()

    def targets(self) -> tuple[HttpTarget, HttpTarget]:
        """The OTLP and the scores endpoint's connections."""
        return self._target, self._scores

    def export(self, items: Sequence[Any]) -> SinkResult:
        """Spans in one OTLP request; scores one per request (the scores API takes one at a time).

        A retried batch is sent again whole (Langfuse upserts observations and scores by id), less
        what was settled before a score's failure (``settled``: the spans, the scores sent). A score
        whose content is refused is dropped alone (``rejected``): the others still go.
        """
        spans, scores = split(items)
        accepted = OK
        if spans:
            accepted = super().export([_as_sent(span) for span in spans])
            if accepted.settled:  # the batch's own spans: a destination settles them by identity
                accepted = dataclasses.replace(accepted, settled=tuple(spans[:len(accepted.settled)]))
            if not accepted.ok:
                return accepted
        headers = {"Authorization": self._auth, "Content-Type": "application/json"}
        refused: list[Any] = []
        reason = ""
        for index, item in enumerate(scores):
            result = self._scores.send(json.dumps(item.body).encode(), headers)
            if result.ok:
                continue
            if result.retryable or result.status not in _SCORE_REFUSED:  # throttled, down, or keys refused:
                settled = (*spans, *scores[:index])  # the rest is the batch's outcome; what went is settled
                return dataclasses.replace(result, settled=settled, rejected=tuple(refused),
                                           rejected_spans=accepted.rejected_spans, message=accepted.message)
            refused.append(item)
            reason = result.reason
        if not refused:
            return accepted
        if len(refused) == len(items):
            return SinkResult(ok=False, reason=reason)
        return dataclasses.replace(accepted, reason=reason, rejected=tuple(refused))

    def after_fork(self) -> None:
        super().after_fork()
        self._scores.forget()

    def close(self) -> None:
        super().close()
        self._scores.close()

    def rotate(self, credentials: Credentials) -> None:
        """Use new keys for the next batch (no restart, no new connection needed). Only for keys of
        this sink's host: keys meant for another host must never be sent here."""
        if credentials.fingerprint != self.fingerprint:
            self.set_headers(langfuse_headers(credentials))
            self._auth = credentials.authorization_header()
            self.fingerprint = credentials.fingerprint
            self.public_key = credentials.public_key


class _AsSent:
    """A span with the attributes Langfuse gets in place of its own (``_as_sent``)."""

    __slots__ = ("_span", "attributes")

    def __init__(self, span: Any, attributes: dict[str, Any]) -> None:
        self._span = span
        self.attributes = attributes

    def __getattr__(self, name: str) -> Any:
        return getattr(self._span, name)


def _as_sent(span: Any) -> Any:
    """``span`` as exported: without ``schema.TEXT_IO`` (the local store's mark); for a replay's
    frozen call that holds a recorded usage or cost, with none spent (``_UNSPENT``), or they would
    count in the project's usage and cost as a call made; with an environment Langfuse takes in
    place of one it refuses (``_environment``); ``span`` itself when none of these applies."""
    attributes = span.attributes or {}
    given = attributes.get(schema.ENVIRONMENT)  # the installed environment, on most spans: taken
    environment = None if given.__class__ is str and given in _TAKEN else _environment(attributes, span.resource)
    marked = schema.TEXT_IO in attributes
    frozen = schema.REPLAY_OF in attributes and attributes.get(_REPLAY_MARK) in ('"frozen"', "frozen") and (
        schema.OBS_USAGE in attributes or schema.OBS_COST in attributes)
    if not (marked or frozen or environment):
        return span
    sent = {key: value for key, value in attributes.items() if key != schema.TEXT_IO}
    if frozen:
        sent.update(_UNSPENT)
        sent.update({key: 0 for key in (schema.GEN_AI_INPUT_TOKENS, schema.GEN_AI_OUTPUT_TOKENS) if key in sent})
    if environment:
        sent[schema.ENVIRONMENT] = environment
        count("environments_replaced")
        log_once("langfuse_environment_refused", "autotrace: Langfuse refuses an environment of some spans "
                 "(deployment.environment of the resource, say: it must match ^(?!langfuse)[a-z0-9_-]+$, at most "
                 "40 characters); sent as %r (counted as environments_replaced)", environment)
    return _AsSent(span, sent)


def _environment(attributes: Any, resource: Any) -> str | None:
    """The environment to send as ``langfuse.environment`` when the one Langfuse would read from the
    span (``_ENVIRONMENT_KEYS``) is one it refuses: Langfuse drops the span's observation and trace
    records over it (``deployment.environment=Production`` in ``OTEL_RESOURCE_ATTRIBUTES``, a
    third-party span's ``deployment.environment.name``). None when nothing needs sending."""
    _, values, replaced = _read(resource)
    if not (attributes.get(schema.ENVIRONMENT) or _DEPLOYMENT_KEYS[0] in attributes
            or _DEPLOYMENT_KEYS[1] in attributes):
        return replaced  # the resource's decides (every span when no environment is installed)
    chosen = (attributes.get(key) or of_resource for key, of_resource in zip(_ENVIRONMENT_KEYS, values, strict=True))
    return _replacement(next((value for value in chosen if value), None))


def resource_environment(resource: Any) -> str | None:
    """The environment Langfuse files the spans of ``resource`` that carry none under, as they are
    sent (``_replacement``): where a score on their trace must go when no environment is installed.
    None when the resource names none (Langfuse's default)."""
    _, values, replaced = _read(resource)
    return replaced or next((value for value in values if value), None)


def _read(resource: Any) -> tuple[Any, tuple[Any, ...], str | None]:
    """``resource``, its values of ``_ENVIRONMENT_KEYS`` and what to send for the first set
    (``_replacement``): read once for the many spans that share it (``_last_resource``)."""
    global _last_resource
    last = _last_resource
    if last[0] is not resource:  # (a key it lacks raises inside)
        found = getattr(resource, "attributes", None) or {}
        values = tuple(found.get(key) for key in _ENVIRONMENT_KEYS)
        last = _last_resource = (resource, values, _replacement(next((value for value in values if value), None)))
    return last


def _replacement(value: Any) -> str | None:
    """What to send for the environment ``value`` Langfuse would read: None for none (Langfuse's
    default) or one it takes; else that name lower-cased if Langfuse takes it so, or ``default``."""
    if not value:
        return None
    if type(value) is str and ENVIRONMENT_NAME.match(value):
        if len(_TAKEN) < _MAX_TAKEN:
            _TAKEN.add(value)
        return None
    lowered = value.lower() if type(value) is str else ""
    return lowered if ENVIRONMENT_NAME.match(lowered) else "default"
