"""Replay a recorded trace from a chosen generation.

Every instrumented call that started BEFORE the chosen generation (and is not one of its
ancestors) returns its recorded output without running; the chosen generation runs live with
overrides (model, parameters, messages); everything after it runs live. Calls are matched by
their position in the tree: the same parent, type and name, in the same order (a frozen model
call is given the reply of a call alike that sent its input, when its counterpart by position did
not: concurrent calls start in another order once those before them are frozen). A call that has no
counterpart in the recording stops the replay with ``ReplayStop``, and so does a call made for
another tenant than the recording's: a replay never hands one tenant's recorded data to another;
and one whose trace is not recorded (left out by the sampler): it could not be matched, only run live.
Spans of other OpenTelemetry instrumentations (a web framework's, the application's own tracer's)
are never seen starting: a call under one is matched under its recorded counterpart (found by
name when the call starts), and recorded spans before a call's counterpart are passed over.

Calls that can be frozen: functions, coroutines and (async) generators decorated with
``observe``/``traced_tool``, OpenAI chat completions (streamed or not, raw, or made for a
LangChain/LlamaIndex generation) and Responses API calls (streamed or not, raw, ``parse``). A frozen call whose recording
raised raises ``RecordedError``; a frozen generator yields its recorded items. Other observations
run live and still keep their positions. A recorded output holding a redaction placeholder
(``<EMAIL>``), or a decorated function's output that was not recorded (``capture_output=False``,
content capture off: None is no stand-in for what it returned), is never handed back as a value: a
generation runs live, a decorated function stops the replay.
The live generation's overrides (``parse_overrides``): ``model``, parameters (a dotted key sets one
key of a nested object: ``reasoning.effort``) and messages.

A replay's state belongs to the context that runs it (a contextvar): replays in other threads or
asyncio tasks, of the same trace or not, never see each other's calls. ``areplay`` runs an async
entry; ``replay`` refuses one (its body would run after the replay ended, nothing frozen).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import stat
import threading
import types
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import INVALID_SPAN, get_current_span, set_span_in_context

from . import schema
from ._internal import count
from .context import current_tenant
from .interception import Intercept, ReplayStop, activate, activate_process, deactivate
from .interception import RecordedError as RecordedError
from .observation import OUTPUT_CAPTURED, Observation
from .replay_report import first_difference as first_difference
from .replay_report import parse_overrides as parse_overrides
from .replay_report import side_by_side as side_by_side
from .runtime import state

_FREEZABLE = frozenset({"generation", "embedding", "retriever", "tool", "guardrail", "evaluator", "chain",
                        "agent", "span"})


class ReplayController:
    """Maps live observations to recorded ones by tree position and decides frozen / live."""

    def __init__(self, recorded: list[dict[str, Any]], at: str, overrides: dict[str, Any] | None = None,
                 reached_file: str | None = None) -> None:
        self.records = {r["id"]: r for r in recorded}
        if at not in self.records:
            raise ValueError(f"observation {at} is not part of trace {recorded[0]['trace_id'] if recorded else '?'}")
        self.at = at
        self.original = recorded[0]["trace_id"]
        self.overrides = dict(overrides or {})
        self.children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
        for record in sorted(recorded, key=lambda r: (r["start_ns"], r["end_ns"])):
            parent = record["parent_id"] if record["parent_id"] in self.records else None
            self.children[parent].append(record)
        self.ancestors: set[str] = set()
        node = self.records[at]
        while node["parent_id"] in self.records and node["parent_id"] not in self.ancestors:  # ids may loop
            node = self.records[node["parent_id"]]
            self.ancestors.add(node["id"])
        self.live_to_recorded: dict[str, str] = {}
        self.seen: Counter[str | None] = Counter()
        self.reached = False
        self.unmapped: set[str] = set()
        self.trace_id: str | None = None
        self.tenants = {r.get("tenant") for r in recorded}
        #: Created when the chosen observation starts: how ``autotrace replay`` learns its program reached it;
        #: it holds ``UNAPPLIED`` while overrides given were not sent with a model request (``overrides_applied``).
        self.reached_file = reached_file
        self.applied = False
        #: Recorded calls whose reply a frozen model call was given (``rematched``).
        self.taken: set[str] = set()
        self._inputs: dict[str, str | None] = {}  # (``_input_of``)
        self._lock = threading.Lock()

    def intercept(self, obs: Observation) -> Intercept | None:
        """The recorded counterpart of ``obs`` frozen, or run live (None). One call at a time: a
        replayed program's threads share the controller and its positions."""
        with self._lock:
            return self._intercept(obs)

    def _intercept(self, obs: Observation) -> Intercept | None:
        tenant = _tenant_of(obs)
        if tenant not in self.tenants:  # checked first: nothing recorded reaches another tenant's run
            raise ReplayStop(_OTHER_TENANT)
        if not obs.span.is_recording():  # no position to match it by: it would run live, side effects and all
            raise ReplayStop(_NOT_RECORDED)
        if self.trace_id is None:
            self.trace_id = obs.trace_id
        obs.span.set_attribute(schema.REPLAY_OF, self.original)
        parent = obs.span.parent  # type: ignore[attr-defined]
        parent_live = format(parent.span_id, "016x") if parent is not None else None
        parent_recorded = self.live_to_recorded.get(parent_live) if parent_live else None
        if parent_recorded is None and parent_live is not None and parent_live not in self.unmapped:
            parent_recorded = self._other_span(parent_live)
        if parent_recorded is None and parent_live in self.unmapped:
            return None  # inside a call that runs live without a recorded counterpart
        record = self._match(parent_recorded, obs.type.value, obs.name)
        if record is None:
            self.unmapped.add(obs.id)
            return None
        if record.get("tenant") != tenant:
            raise ReplayStop(_OTHER_TENANT)
        self.live_to_recorded[obs.id] = record["id"]
        if record["id"] == self.at:
            self._reach()
            return Intercept(frozen=False, record=record, overrides=self.overrides)
        if self.reached or record["id"] in self.ancestors or record["type"] not in _FREEZABLE:
            return None
        return _frozen(record, obs)

    def rematched(self, record: dict[str, Any], live_input: Any) -> dict[str, Any]:
        """The recording whose outcome (reply or error) a frozen model call sending ``live_input`` is
        given: the first in recorded order of the calls of the same type and name under the same parent
        (``record``, its counterpart by position, among them), started before the chosen observation and
        not yet given to a call, that was sent exactly this input; ``record`` when none was. Concurrent
        calls (``asyncio.gather``) start in another order when the frozen ones before them return at
        once: by position alone one call was given another's reply or error; calls sent one input
        (samples of one prompt) are given its recorded replies in turn, never one of them twice."""
        with self._lock:
            wanted = _canonical(live_input)
            chosen = record
            if wanted is not None:
                chosen = next((other for other in self._candidates(record) if self._input_of(other) == wanted),
                              record)
            self.taken.add(chosen["id"])
            return chosen

    def _input_of(self, record: dict[str, Any]) -> str | None:
        """``_canonical`` of ``record``'s input, computed once per record."""
        if record["id"] not in self._inputs:
            self._inputs[record["id"]] = _canonical(record.get("input"))
        return self._inputs[record["id"]]

    def _candidates(self, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Recorded calls that could stand in for ``record``: alike, frozen, not yet given, with an outcome."""
        parent = record["parent_id"] if record["parent_id"] in self.records else None
        before = self.records[self.at]["start_ns"]
        for other in self.children[parent]:
            if ((other["type"], other["name"]) == (record["type"], record["name"]) and other["id"] not in self.taken
                    and other["id"] != self.at and other["id"] not in self.ancestors and other["start_ns"] < before
                    and other.get("tenant") == record.get("tenant") and _unservable(other) is None):
                yield other

    def _reach(self) -> None:
        if not self.reached:
            self._note(UNAPPLIED if self.overrides and not self.applied else "")
        self.reached = True

    def overrides_applied(self) -> None:
        """Called by the integration that sends the chosen generation's model request with the
        overrides (an OpenAI call's, made here or for a framework's generation): until then a
        generation that made no such request ran as recorded, its overrides ignored."""
        if not self.applied:
            self.applied = True
            if self.reached:
                self._note("", again=True)

    def _note(self, text: str, again: bool = False) -> None:
        """Create ``reached_file`` holding ``text`` (``again``: in place of the one created), never
        through a link another user put there; the command then says the program never reached the
        chosen observation when it cannot."""
        if self.reached_file:
            try:
                if again:
                    os.unlink(self.reached_file)
                with open(self.reached_file, "x", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError:
                pass

    def _match(self, parent: str | None, kind: str, name: str) -> dict[str, Any] | None:
        """The next recorded call under ``parent`` if it is of this type and name, passing over
        recorded spans before it (those of other OpenTelemetry instrumentations, which a replay
        never sees start); None after the chosen generation, ``ReplayStop`` before it."""
        index, siblings = self.seen[parent], self.children[parent]
        for ahead in range(index, len(siblings)):
            if (siblings[ahead]["type"], siblings[ahead]["name"]) == (kind, name):
                self.seen[parent] = ahead + 1
                return siblings[ahead]
            if siblings[ahead]["type"] != "span":
                break
        self.seen[parent] = index + 1
        if self.reached:
            return None
        record = siblings[index] if index < len(siblings) else None
        expected = f"{record['type']} {record['name']!r}" if record else "nothing"
        raise ReplayStop(f"replay mismatch: call #{index + 1} under "
                         f"{self.records[parent]['name'] if parent else 'the root'} is "
                         f"{kind} {name!r}, the recording has {expected} there")

    def _other_span(self, span_id: str) -> str | None:
        """The recorded counterpart of the current span ``span_id`` that is no observation (another
        instrumentation's, the application's own tracer's), matched by name where it started (None,
        the root, for a parent from another process)."""
        span = get_current_span()
        name = getattr(span, "name", None)
        if format(span.get_span_context().span_id, "016x") != span_id or not isinstance(name, str):
            return None
        outer = getattr(span, "parent", None)
        outer_live = format(outer.span_id, "016x") if outer is not None else None
        parent = self.live_to_recorded.get(outer_live) if outer_live else None
        record = None if outer_live in self.unmapped else self._match(parent, "span", name)
        if record is None:
            self.unmapped.add(span_id)
            return None
        self.live_to_recorded[span_id] = record["id"]
        return record["id"]


def _frozen(record: dict[str, Any], obs: Observation) -> Intercept | None:
    """A frozen call's intercept, unless its recording cannot be handed back as the call's outcome
    (``_unservable``): a generation then runs live (its model call is made again; an OpenAI call's
    counted ``openai.replay_live``), any other call stops the replay where its output would be
    handed back (``_Withheld``)."""
    why = _unservable(record)
    if why is None:
        return Intercept(frozen=True, record=record)
    if record["type"] == "generation":
        if record["name"].startswith("openai."):
            count("openai.replay_live")
        return None
    return _Withheld(frozen=True, record=record, obs=obs, why=why)


#: What a call's recording names when it was interrupted, not failed (``Observation.record_error``).
_INTERRUPTIONS = frozenset({"CancelledError", "KeyboardInterrupt", "SystemExit", "GeneratorExit"})


def _unservable(record: dict[str, Any]) -> str | None:
    """Why ``record``'s output is no outcome to hand the program, or None: the call was interrupted
    (cancelled by a timeout, say) before it returned, so its output is no value it gave back; or the
    output holds what redaction put in place of a value (``<EMAIL>``, ``<REDACTION_FAILED>`` ...),
    which handed back would be taken as the value and sent on as real; or the value returned was not
    recorded (``OUTPUT_CAPTURED``), and None, or an output the program set itself (a summary beside
    ``capture_output=False``), would be handed back in place of what the call returned."""
    output, what = record.get("output"), f"{record.get('type')} {record.get('name')!r}"
    status = str(record.get("status_message") or "")
    if output is None and record.get("level") == "WARNING" and status.partition(":")[0] in _INTERRUPTIONS:
        return (f"replay stopped: the recording of {what} was interrupted ({status[:80]}) before it returned: "
                f"it has no outcome to give the program")
    if (record.get("metadata") or {}).get(OUTPUT_CAPTURED) is False:  # (an output the program set is no return value)
        return (f"replay stopped: the output of {what} was not recorded (capture_output=False, or content capture "
                f"off): frozen, it would return {'None' if output is None else 'the output set'} in place of what it "
                f"returned")
    found = _placeholders().search(json.dumps(output, ensure_ascii=False, default=str))
    if found is None:
        return None
    return (f"replay stopped: the recorded output of {what} holds a value redaction replaced ({found.group()}); "
            f"frozen, it would be handed to the program as real")


@dataclasses.dataclass(frozen=True, slots=True)
class _Withheld(Intercept):
    """A frozen call whose recording is no outcome to hand back (``_unservable``): a call that hands
    its output back (a decorated function's) ends failed and stops the replay when it reads it; a
    block that runs anyway (the program's own ``start_tool``) never does, and keeps its position."""

    obs: Observation | None = None
    why: str = ""

    @property
    def output(self) -> Any:
        message = self.why
        if self.obs is not None:
            self.obs.record_error(message)
            self.obs.end()
        raise ReplayStop(message)


@functools.cache
def _placeholders() -> re.Pattern[str]:
    """What redaction's detectors put in place of a value, or of one it failed to redact."""
    from .export.detectors import BUILT_IN_KINDS
    from .export.redaction import FAILED

    return re.compile("|".join(re.escape(text) for text in sorted({FAILED, *(f"<{k}>" for k in BUILT_IN_KINDS)})))


_OTHER_TENANT = ("replay stopped: this run is for another tenant than the recording (a replay never hands "
                 "one tenant's recorded data to another)")
_NOT_RECORDED = ("replay stopped: this run is not recorded (the sampler left its trace out: OTEL_TRACES_SAMPLER, "
                 "or tracing is off), so its calls cannot be matched to the recording; none is run live in its place")


def _canonical(value: Any) -> str | None:
    """A recorded (or live) input as comparable text; None for none (content not captured)."""
    if value is None:
        return None
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return None


def _tenant_of(obs: Observation) -> str | None:
    """The tenant a live call runs for: that of its context and that of its trace (as the pipeline
    decided when the trace started), which must agree; ``""`` (nobody's) when they differ."""
    pipeline = state.pipeline
    trace_id = obs.span.get_span_context().trace_id
    found = {current_tenant(), pipeline.tenants.known(trace_id) if pipeline is not None else None} - {None}
    return (found.pop() if len(found) == 1 else "") if found else None


#: What ``reached_file`` holds when the chosen generation ran without its overrides applied.
UNAPPLIED = "overrides not applied"


@dataclasses.dataclass
class ReplayResult:
    """``reached``: the chosen observation started; ``overridden``: its model request was sent with the
    overrides (False when none were given, or when it made no request they apply to: they were ignored)."""

    trace_id: str | None
    result: Any
    reached: bool
    overridden: bool = False


def replay(recorded: list[dict[str, Any]], at: str, entry: Callable[..., Any], *args: Any,
           overrides: dict[str, Any] | None = None, **kwargs: Any) -> ReplayResult:
    """Run ``entry(*args, **kwargs)`` as a replay of ``recorded`` from observation ``at``.

    The run is recorded as a new trace carrying ``autotrace.replay_of`` = the original trace id.
    ``entry`` must do its work before it returns: a coroutine, generator or async generator it
    returns is closed unrun and ``TypeError`` raised (use ``areplay`` for an async entry).
    """
    with _replaying(recorded, at, overrides) as controller:
        result = entry(*args, **kwargs)
        if isinstance(result, types.CoroutineType | types.GeneratorType | types.AsyncGeneratorType):
            _refuse(result)
    return ReplayResult(trace_id=controller.trace_id, result=result, reached=controller.reached,
                        overridden=controller.applied)


async def areplay(recorded: list[dict[str, Any]], at: str, entry: Callable[..., Awaitable[Any]], *args: Any,
                  overrides: dict[str, Any] | None = None, **kwargs: Any) -> ReplayResult:
    """``replay`` for an async entry: awaits ``entry(*args, **kwargs)``. Replays awaited in different
    tasks (``asyncio.gather`` makes one per replay) each see only their own recording and overrides."""
    with _replaying(recorded, at, overrides) as controller:
        result = await entry(*args, **kwargs)
    return ReplayResult(trace_id=controller.trace_id, result=result, reached=controller.reached,
                        overridden=controller.applied)


@contextmanager
def _replaying(recorded: list[dict[str, Any]], at: str,
               overrides: dict[str, Any] | None) -> Iterator[ReplayController]:
    """A controller for the replay, active in this context (thread or task) only while it runs, and no
    current span: the replay is a trace of its own, its root matched with the recording's, even when
    started inside a span (a request's, an evaluation harness's observation)."""
    controller = ReplayController(recorded, at, overrides)
    token = activate(controller)
    root = otel_context.attach(set_span_in_context(INVALID_SPAN))
    try:
        yield controller
    finally:
        otel_context.detach(root)
        deactivate(token)


def _refuse(result: Any) -> None:
    """``replay``'s entry returned work that would run after the replay, with no call frozen."""
    if not isinstance(result, types.AsyncGeneratorType):  # an async generator never started needs no closing
        result.close()
    kind = type(result).__name__
    hint = "await areplay(...) for an async entry" if kind == "coroutine" else "consume it inside the entry"
    raise TypeError(f"replay: the entry returned a {kind}, which would run after the replay, with no call frozen; "
                    f"{hint}")


REPLAY_FILE_ENV = "AUTOTRACE_REPLAY_FILE"


def taken_note(path: str) -> tuple[bool, bool]:
    """Whether the replayed program reached the chosen observation (it created ``path``), and whether
    it ran without its overrides applied (``UNAPPLIED``); ``path`` is removed. Read without waiting
    or following a link: whatever another user put there is no regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return False, False
    except OSError:  # there, but not ours to read
        unapplied = False
    else:
        with os.fdopen(fd, "rb") as handle:
            unapplied = stat.S_ISREG(os.fstat(fd).st_mode) and handle.read(64) == UNAPPLIED.encode()
    try:
        os.unlink(path)
    except OSError:
        pass
    return True, unapplied


def activate_from_environment(environ: dict[str, str]) -> bool:
    """Set up a process-wide replay described by ``autotrace replay`` in the environment."""
    path = environ.get(REPLAY_FILE_ENV)
    if not path:
        return False
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    activate_process(ReplayController(spec["records"], spec["at"], spec.get("overrides"), spec.get("reached_file")))
    return True
