"""LlamaIndex streaming responses: a streaming query returns before its LLM is called, and reading
the response's ``response_gen`` calls it. That generator is relayed: each step makes the innermost
chain (the synthesis) current, so the LLM span the step starts nests under it, even in a thread the
caller copied its context to; the chains stay open until the stream ends, fails, is closed or is
freed unread, and then record the streamed text as their output (interrupted, WARNING, when it was
closed or freed before its end).

A chat engine's streaming reply (``StreamingAgentChatResponse``) is written by a thread or task the
engine starts (``write_response_to_history``, a span under the engine's): the engine's chain stays
open until that writer ends (or the reply is freed), then records the reply's text or its error. A
reply with no writer (``is_writing_to_memory=False``, 0.12's context chat engines) has its LLM stream
(``chat_stream``/``achat_stream``) relayed as a query's is, the chain ending with the deltas read.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from ... import bounds
from ..._internal import guarded_failure
from ...observation import STREAM_CLOSED, Observation, make_current, restore_context
from ...runtime import state

#: guards ``chats`` between a chat engine returning its reply and the reply's writer ending (re-entered by
#: a finalizer the garbage collector runs meanwhile)
_CHATS_LOCK = threading.RLock()
#: while a relayed response stream takes a step, or a reranker's async call runs (``_rerank``): (its
#: innermost chain, or the rerank, and LlamaIndex's span id then, whose new children belong to it)
_READING: ContextVar[tuple[str, str | None] | None] = ContextVar("autotrace_llama_index_reading", default=None)
#: while a streamed structured prediction is called (``_predict``): where the relay of its stream is put
_PREDICTING: ContextVar[list[Any] | None] = ContextVar("autotrace_llama_index_predicting", default=None)


class Response:
    """A streaming response whose chains (innermost first) stay open until its token stream ends;
    ``whole``: a stream of objects, each the answer so far (a structured prediction's), whose last
    is the output."""

    def __init__(self, id_: str, whole: bool = False) -> None:
        self.ids, self.pieces, self.done = [id_], [], False  # pieces: the text so far, to the value limit
        self.whole, self.last = whole, None


class ResponseRelay:
    """The relaying half of the LlamaIndex tracker, which provides ``open`` (LlamaIndex span id ->
    open observation) and ``responses`` (relayed generator -> ``Response``)."""

    open: OrderedDict[str, tuple[Observation, Any]]
    responses: weakref.WeakKeyDictionary[Any, Response]
    chats: OrderedDict[int, Response]  # id of a chat reply still being written -> the chains it ends
    bases: OrderedDict[str, str]  # a streamed prediction's base call an override makes -> the override's chain
    _bound: Callable[[OrderedDict[Any, Any]], None]

    def relayed_parent(self, parent_id: str | None) -> str | None:
        """The chain a span started by a relayed step belongs under, else None."""
        reading = _READING.get()
        if reading is not None and parent_id == reading[1] and reading[0] in self.open:
            return reading[0]
        return None

    def _relay(self, id_: str, response: Any, attribute: str = "response_gen") -> bool:
        """Relay a streaming response's ``response_gen`` (or other stream ``attribute``); True if chain
        ``id_`` now ends with it."""
        source = getattr(response, attribute, None)
        if not (inspect.isgenerator(source) or inspect.isasyncgen(source)):
            return False
        joined = self.responses.get(source)
        if joined is not None:  # an outer chain returning the response an inner one relays
            if joined.done:
                return False
            joined.ids.append(id_)
            return True
        tracked = Response(id_)
        relay = self._relay_async(source, tracked) if inspect.isasyncgen(source) else self._relay_sync(source, tracked)
        try:
            setattr(response, attribute, relay)
        except Exception:  # a response type that cannot take it: the chain ends now
            return False
        self._track(relay, tracked)
        return True

    def _track(self, relay: Any, tracked: Response) -> None:
        self.responses[relay] = tracked
        weakref.finalize(relay, self._response_ended, tracked, None, True)  # never read: its body never runs

    def _relay_prediction(self, id_: str, stream: Any) -> bool:
        """Relay the stream of partial objects a streamed structured prediction (chain ``id_``) returned
        to the wrapper of its call (``_predict``), which returns the relay instead; True if the chain
        now ends with it, with its last object. An LLM's override of the call (LlamaIndex's OpenAI's,
        Anthropic's ...: a span of its own around its base's) returns the relay its base's made for it
        (``relay_overridden``)."""
        if not (inspect.isgenerator(stream) or inspect.isasyncgen(stream)):
            return False
        joined = self.responses.get(stream)
        if joined is not None:
            return joined.whole and joined.ids[0] == id_ and not joined.done
        holder = _PREDICTING.get()
        if holder is None or holder or id_ not in self.open:
            return False
        tracked = Response(id_, whole=True)
        relay = self._relay_async(stream, tracked) if inspect.isasyncgen(stream) else self._relay_sync(stream, tracked)
        self._track(relay, tracked)
        holder.append(relay)
        return True

    def relay_overridden(self, id_: str, result: Any, error: BaseException | None) -> None:
        """The base's streamed structured prediction ``id_`` an LLM's override calls (LlamaIndex's
        OpenAI's, Anthropic's ...), not recorded apart from the override's chain (``bases``): its
        stream is relayed for that chain, as the override returns it."""
        outer = self.bases.pop(id_, None)
        if outer is not None and error is None and _PREDICTING.get() == []:
            self._relay_prediction(outer, result)

    def _step_context(self, tracked: Response) -> tuple[object | None, Any] | None:
        """Make the innermost chain current for one step of its stream (the LLM call starts there)."""
        try:
            entry = self.open.get(tracked.ids[0]) if not tracked.done else None
            if entry is None:
                return None
            from llama_index.core.instrumentation.span import active_span_id

            return make_current(entry[0]), _READING.set((tracked.ids[0], active_span_id.get()))
        except Exception as exc:  # the caller's read goes on untraced
            guarded_failure("llama_index.response_step", exc)
            return None

    @staticmethod
    def _step_done(token: tuple[object | None, Any] | None, tracked: Response, item: Any) -> None:
        try:
            if token is not None:
                _READING.reset(token[1])
                restore_context(token[0])
            if tracked.whole:
                tracked.last = item if item is not None else tracked.last
                return
            piece = item if isinstance(item, str) else getattr(item, "delta", None)  # a ChatResponse's text
            if isinstance(piece, str):
                bounds.keep_piece(tracked.pieces, piece, state.max_value_bytes)
        except Exception as exc:
            guarded_failure("llama_index.response_step", exc)

    def _relay_sync(self, source: Any, tracked: Response) -> Any:
        error: BaseException | None = None
        try:
            while True:
                token, item = self._step_context(tracked), None
                try:
                    item = next(source)
                except StopIteration:
                    return
                finally:
                    self._step_done(token, tracked, item)
                yield item
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if isinstance(error, GeneratorExit):
                    source.close()  # closed by the caller: close what it was reading, as ``yield from`` does
            finally:
                self._response_ended(tracked, error)

    async def _relay_async(self, source: Any, tracked: Response) -> Any:
        error: BaseException | None = None
        try:
            while True:
                token, item = self._step_context(tracked), None
                try:
                    item = await source.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    self._step_done(token, tracked, item)
                yield item
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if isinstance(error, GeneratorExit):
                    await source.aclose()  # as the sync relay does: not left to the loop's finaliser
            finally:
                self._response_ended(tracked, error)

    def _response_ended(self, tracked: Response, error: BaseException | None, unread: bool = False) -> None:
        """End the chains of a response stream (once; never raises into the reader). A stream its reader
        closed before its end (GeneratorExit: ``break``, ``close()``, dropped while read) or dropped
        ``unread`` cut the answer short: interrupted (WARNING), with the text read, as a stream of
        LangChain's or of ``observe`` is."""
        if tracked.done:
            return
        tracked.done = True
        text = "".join(tracked.pieces)
        for id_ in tracked.ids:
            entry = self.open.pop(id_, None)
            if entry is None:
                continue  # evicted
            obs = entry[0]
            try:
                obs.update(output=tracked.last if tracked.whole else text)
                if unread or isinstance(error, GeneratorExit):
                    obs.set_level("WARNING", STREAM_CLOSED)
                elif error is not None:
                    obs.record_error(error)
            except Exception as exc:  # it still ends, with what it has
                guarded_failure("llama_index.response_ended", exc)
            obs.end()

    def _follow_chat(self, id_: str, reply: Any) -> bool:
        """Have chain ``id_`` end when a chat engine's streaming ``reply`` is written; True if it now waits."""
        if type(reply).__name__ != "StreamingAgentChatResponse":
            return False
        if getattr(reply, "is_writing_to_memory", True) is False:  # no writer (0.12's context engines): the
            # caller reads the LLM's stream itself, through ``response_gen``
            return self._relay(id_, reply, "chat_stream" if reply.chat_stream is not None else "achat_stream")
        key = id(reply)  # the reply is unhashable; finalize forgets the key before the id can be reused
        with _CHATS_LOCK:  # the writer sets is_done (or exception), then ends: it cannot end between these
            written = getattr(reply, "is_done", True) or getattr(reply, "exception", None) is not None
            if not written:
                tracked = self.chats.get(key)
                if tracked is None:
                    tracked = self.chats[key] = Response(id_)
                    weakref.finalize(reply, self._chat_written, key, None)
                else:  # an outer chain returning the reply an inner one waits for
                    tracked.ids.append(id_)
        if written:  # before the engine returned
            self._end_chat(Response(id_), reply)
        else:
            self._bound(self.chats)
        return True

    def _chat_written(self, key: int, reply: Any, error: BaseException | None = None) -> None:
        """End the chains waiting for a chat reply, once (``reply`` is None: freed unwritten; ``error``:
        what its writer raised)."""
        with _CHATS_LOCK:
            tracked = self.chats.pop(key, None)
        if tracked is not None:
            self._end_chat(tracked, reply, error)

    def _end_chat(self, tracked: Response, reply: Any, error: BaseException | None = None) -> None:
        """End chains with a chat reply's text, or its writer's error. A writer cancelled (its task, or
        the loop running it, ending) keeps no error on the reply: interrupted, with the text read."""
        error = getattr(reply, "exception", None) or error
        interrupted = error is not None and not isinstance(error, Exception)
        text = getattr(reply, "response", None) or (getattr(reply, "unformatted_response", None) if interrupted else None)
        if not text and error is None and reply is not None:
            text = _written_text(reply)
        tracked.pieces = [text] if isinstance(text, str) else []
        self._response_ended(tracked, error)


def _written_text(reply: Any) -> str | None:
    """The text of a reply whose writer leaves ``response`` unset (llama-index-core 0.12.0 sets it only
    as the reader finishes): what the reader has taken and what is still queued, never consumed."""
    try:
        queued = [*getattr(getattr(reply, "queue", None), "queue", ()),
                  *getattr(getattr(reply, "aqueue", None), "_queue", ())]
        text = (getattr(reply, "unformatted_response", None) or "") + "".join(d for d in queued if isinstance(d, str))
    except Exception as exc:  # an unexpected reply type: the chain ends without the text
        guarded_failure("llama_index.chat_written", exc)
        return None
    return text.strip() or None

