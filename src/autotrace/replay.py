"""Replay a recorded trace from a chosen generation.

Every instrumented call that started BEFORE the chosen generation (and is not one of its
ancestors) returns its recorded output without running; the chosen generation runs live with
overrides (model, parameters, messages); everything after it runs live. Calls are matched by
their position in the tree: the same parent, type and name, in the same order. A call that has no
counterpart in the recording stops the replay with ``ReplayStop``, and so does a call made for
another tenant than the recording's: a replay never hands one tenant's recorded data to another.
Spans of other OpenTelemetry instrumentations (a web framework's, the application's own tracer's)
are never seen starting: a call under one is matched under its recorded counterpart (found by
name when the call starts), and recorded spans before a call's counterpart are passed over.

Calls that can be frozen: functions, coroutines and (async) generators decorated with
``observe``/``traced_tool``, OpenAI chat completions (streamed or not, raw, or made for a
LangChain/LlamaIndex generation) and Responses API calls (streamed or not, raw, ``parse``). A frozen call whose recording
raised raises ``RecordedError``; a frozen generator yields its recorded items. Other observations
run live and still keep their positions. A recorded output holding a redaction placeholder
(``<EMAIL>``) is never handed back as a value: a generation runs live, a decorated function stops
the replay.
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
import re
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
from .observation import Observation
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
        #: Created when the chosen observation starts: how ``autotrace replay`` learns its program reached it.
        self.reached_file = reached_file
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

    def _reach(self) -> None:
        if not self.reached and self.reached_file:
            try:
                open(self.reached_file, "x").close()
            except OSError:  # the command then says the program never reached it: never silently
                pass
        self.reached = True

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
    which handed back would be taken as the value and sent on as real."""
    output, what = record.get("output"), f"{record.get('type')} {record.get('name')!r}"
    status = str(record.get("status_message") or "")
    if output is None and record.get("level") == "WARNING" and status.partition(":")[0] in _INTERRUPTIONS:
        return (f"replay stopped: the recording of {what} was interrupted ({status[:80]}) before it returned: "
                f"it has no outcome to give the program")
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


def _tenant_of(obs: Observation) -> str | None:
    """The tenant a live call runs for: that of its context and that of its trace (as the pipeline
    decided when the trace started), which must agree; ``""`` (nobody's) when they differ."""
    pipeline = state.pipeline
    trace_id = obs.span.get_span_context().trace_id
    found = {current_tenant(), pipeline.tenants.known(trace_id) if pipeline is not None else None} - {None}
    return (found.pop() if len(found) == 1 else "") if found else None


@dataclasses.dataclass
class ReplayResult:
    trace_id: str | None
    result: Any
    reached: bool


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
    return ReplayResult(trace_id=controller.trace_id, result=result, reached=controller.reached)


async def areplay(recorded: list[dict[str, Any]], at: str, entry: Callable[..., Awaitable[Any]], *args: Any,
                  overrides: dict[str, Any] | None = None, **kwargs: Any) -> ReplayResult:
    """``replay`` for an async entry: awaits ``entry(*args, **kwargs)``. Replays awaited in different
    tasks (``asyncio.gather`` makes one per replay) each see only their own recording and overrides."""
    with _replaying(recorded, at, overrides) as controller:
        result = await entry(*args, **kwargs)
    return ReplayResult(trace_id=controller.trace_id, result=result, reached=controller.reached)


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


def activate_from_environment(environ: dict[str, str]) -> bool:
    """Set up a process-wide replay described by ``autotrace replay`` in the environment."""
    path = environ.get(REPLAY_FILE_ENV)
    if not path:
        return False
    with open(path, encoding="utf-8") as handle:
        spec = json.load(handle)
    activate_process(ReplayController(spec["records"], spec["at"], spec.get("overrides"), spec.get("reached_file")))
    return True


def side_by_side(original: list[dict[str, Any]], replayed: list[dict[str, Any]], width: int = 100) -> str:
    """The two trees next to each other: the original's column as wide as its longest line, up to
    ``width``; a line cut to fit ends with ``…``."""
    from .render import render_tree

    left = render_tree(original, io=False).splitlines()
    right = render_tree(replayed, io=False).splitlines()
    width = min(width, max(map(len, left), default=0))
    rows = [f"{'ORIGINAL':<{width}}  REPLAY"]
    for index in range(max(len(left), len(right))):
        a = left[index] if index < len(left) else ""
        b = right[index] if index < len(right) else ""
        rows.append(f"{a if len(a) <= width else a[:width - 1] + '…':<{width}}  {b}")
    return "\n".join(rows)


def parse_overrides(settings: list[str], messages_file: str | None = None) -> dict[str, Any]:
    """``model=gpt-4o`` and ``temperature=0.2`` style settings into replay overrides; a dotted key
    (``reasoning.effort=high``) sets one key of the request's object there, keeping its others. A
    value is JSON, or else the text as typed; the model a name (a JSON string, or the text as
    typed). ``ValueError`` (one line) for anything the replayed call could not send."""
    overrides: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not all(key.split(".")):
            raise ValueError(f"--set expects key=value (a dotted key for a nested one), got {item!r}")
        what = f"--set {item[:80]!r}"
        if key == "model":
            name = _json_value(raw, what, raw) if raw.lstrip().startswith('"') else _sendable(raw, what)
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"{what}: the model needs a name")
            overrides["model"] = name
        else:
            parameters[key] = _json_value(raw, what, raw)
    if parameters:
        overrides["model_parameters"] = parameters
    if messages_file:
        what = f"--messages-file {messages_file}"
        try:
            with open(messages_file, encoding="utf-8-sig") as handle:  # a byte order mark is no JSON
                messages = _json_value(handle.read(), what)
        except OSError as exc:
            raise ValueError(f"{what}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} is not a JSON list of messages ({exc})") from None
        if not isinstance(messages, list):
            raise ValueError(f"{what} must hold a JSON list of messages")
        overrides["messages"] = overrides["input"] = messages  # ``input``: a Responses API call's messages
    return overrides


_NO_TEXT = object()


def _json_value(text: str, what: str, otherwise: Any = _NO_TEXT) -> Any:
    """The JSON value ``text`` holds, else ``otherwise`` if given; ``ValueError`` naming ``what`` for
    text that is not JSON, or a value the replayed call could not send (``_sendable``)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply") from None
    except ValueError as exc:
        if otherwise is _NO_TEXT:
            raise ValueError(f"{what} is not a JSON list of messages ({exc})") from None
        value = otherwise
    return _sendable(value, what)


def _sendable(value: Any, what: str) -> Any:
    """``value`` if the SDK can send it as JSON; else ``ValueError`` naming ``what``: nested too
    deeply to write (a ``RecursionError`` was a traceback), NaN or infinity (JSON has neither), a
    lone surrogate (``"\\ud800"``, or argv bytes that are not UTF-8: no UTF-8 text)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError(f"{what}: nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError(f"{what}: holds a lone surrogate, which is not UTF-8 text") from None
    except ValueError:
        raise ValueError(f"{what}: not a finite number (JSON has no NaN or infinity)") from None
    return value


def _describe(record: dict[str, Any]) -> str:
    return f"{record['type']} {record['name']!r}"


def _failed(record: dict[str, Any]) -> str | None:
    """What a recorded call failed with (its status message, cut), or None when it did not fail."""
    return str(record.get("status_message") or "an error")[:80] if record.get("level") == "ERROR" else None


def _changed_outcome(a: dict[str, Any], b: dict[str, Any], where: str) -> str | None:
    """How the outcome of ``a`` (the original's) and ``b`` (the replay's) differ: the output, else
    whether the call failed (a call run for its effect records no output either way); None if alike."""
    what = _describe(a)
    if a.get("output") != b.get("output"):
        return (f"{where}: {what} output {json.dumps(a.get('output'), default=str)[:80]} became "
                f"{json.dumps(b.get('output'), default=str)[:80]}")
    failed_a, failed_b = _failed(a), _failed(b)
    if (failed_a is None) == (failed_b is None):
        return None
    return (f"{where}: {what} failed in the replay ({failed_b}), not in the original" if failed_b is not None else
            f"{where}: {what} failed in the original ({failed_a}), not in the replay")


def first_difference(original: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> str | None:
    """The first observation, in execution order, whose type, name or output differs, or that failed
    in one run only.

    Children are compared before their parent's output (a step's output differs because of what
    ran inside it); the children of a frozen call are not compared, as it did not run. The trees
    are walked without recursion, however deep.
    """
    from .render import build_tree

    def tree(records: list[dict[str, Any]]) -> list[Any]:
        return build_tree(sorted(records, key=lambda r: r["start_ns"]))

    # per level: both lists of children, their path, the next index, and the pair whose output follows them
    stack: list[tuple[list[Any], list[Any], str, Iterator[int], tuple[Any, ...] | None]] = []

    def enter(left: list[Any], right: list[Any], path: str, owner: tuple[Any, ...] | None) -> None:
        stack.append((left, right, path, iter(range(max(len(left), len(right)))), owner))

    enter(tree(original), tree(replayed), "", None)
    while stack:
        left, right, path, indices, owner = stack[-1]
        index = next(indices, None)
        if index is None:
            stack.pop()
            if owner is not None and (changed := _changed_outcome(*owner)) is not None:
                return changed
            continue
        where = f"{path}{index + 1}"
        if index >= len(left):
            return f"{where}: {_describe(right[index][0])} exists only in the replay"
        if index >= len(right):
            return f"{where}: {_describe(left[index][0])} exists only in the original"
        (a, a_children), (b, b_children) = left[index], right[index]
        if (a["type"], a["name"]) != (b["type"], b["name"]):
            return f"{where}: {_describe(a)} became {_describe(b)}"
        frozen = (b.get("metadata") or {}).get("replay") == "frozen"
        enter([] if frozen else a_children, [] if frozen else b_children, f"{where}.", (a, b, where))
    return None
