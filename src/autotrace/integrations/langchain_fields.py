"""What a LangChain run's config says besides its input, and a tool run's result.

- ``config["metadata"]``: ``user_id``/``session_id`` (or ``langfuse_user_id``/``langfuse_session_id``)
  and ``langfuse_trace_name`` become trace attributes unless None or empty, ``langfuse_tags`` trace
  tags, ``prompt_name``/``prompt_version`` (or ``langfuse_prompt_*``) the prompt of generations, other
  keys (except LangChain's own ``ls_*`` and ``lc_versions``) observation metadata.
- ``langfuse_prompt``, a Langfuse prompt client, the way Langfuse's own handler links it: set on a
  prompt template's run, the prompt of the next generation under that run's parent (``link_prompt``).
- ``config["tags"]``: a run's own tags (not those it inherits from its parent run, nor the ones
  LangChain and LangGraph give the steps they run, ``seq:step:1``...) are its metadata ``tags``;
  the tags of a root run, as Langfuse's own LangChain handler takes them, the trace's tags. Trace
  tags reach every span of the run's tree, merged with ``langfuse_tags`` and the tags of
  ``autotrace.trace_attributes``, which they would otherwise replace.
- a tool's ``ToolMessage``: its content (an image's base64, a data URL in its text, noted by kind and
  size), with its artifact (``response_format="content_and_artifact"``) beside it when it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any
from uuid import UUID

from .. import schema
from .._internal import count
from ..context import current_trace_attributes
from ..observation import Observation, ObservationType
from . import langchain_graph as lg
from .documents import MAX_DOCUMENTS
from .langchain_convert import document_fields
from .media import without_data_urls, without_media

_TRACE_KEYS = {"user_id": schema.TRACE_USER, "langfuse_user_id": schema.TRACE_USER,
               "session_id": schema.TRACE_SESSION, "langfuse_session_id": schema.TRACE_SESSION,
               "langfuse_trace_name": schema.TRACE_NAME}
PROMPT_OBJECT = "langfuse_prompt"  # a Langfuse prompt client (``link_prompt``)
_PROMPT_KEYS = ("prompt_name", "prompt_version", "langfuse_prompt_name", "langfuse_prompt_version", PROMPT_OBJECT)
#: ancestors a generation looks through for a prompt left to it (``link_prompt``)
_MAX_PROMPT_DEPTH = 32
#: Tags LangChain (sequences, maps, branches) and LangGraph (node tasks, hidden runs) give the steps they run.
_BOOKKEEPING = ("seq:step:", "map:key:", "condition:", "branch:", "graph:step:", "langsmith:")
_NO_STREAM = "nostream"  # LangGraph's: a model whose tokens are kept out of the graph's stream


def run_metadata(obs: Observation, metadata: dict[str, Any] | None,
                 node: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The observation metadata of a run from its ``metadata`` and its ``langfuse_tags``; sets the
    trace's user and session, and the prompt of a generation, on ``obs``."""
    if not metadata:
        return {}, []
    extra: dict[str, Any] = {}
    langfuse_tags: list[str] = []
    for key, value in metadata.items():
        if key in _TRACE_KEYS:
            # an anonymous caller (None, "") is no user "None"
            if value is not None and not (type(value) is str and not value):
                obs.span.set_attribute(_TRACE_KEYS[key], str(value))
        elif key == "langfuse_tags":  # the trace's tags (one string is one tag)
            tags = [value] if isinstance(value, str) else value
            if isinstance(tags, list | tuple):
                langfuse_tags = [str(tag) for tag in tags]
        elif type(key) is not str:  # LangChain accepts any key; a span attribute needs text
            extra[str(key)] = value
        elif key in lg.GRAPH_KEYS and lg.of_graph(metadata):  # LangGraph's: where a node is, on the node only
            if node and key in lg.NODE_KEYS:
                extra[key] = value
        elif key in _PROMPT_KEYS or key.startswith("ls_") or key == "lc_versions":  # LangChain's own
            continue
        else:
            extra[key] = value
    if obs.type is ObservationType.GENERATION:
        name = metadata.get("prompt_name") or metadata.get("langfuse_prompt_name")
        if name is not None:
            version = metadata.get("prompt_version") or metadata.get("langfuse_prompt_version")
            obs.update(prompt={"name": name, "version": version})
    return extra, langfuse_tags


def link_prompt(runs: Mapping[UUID, Any], run: Any, parent: Any, metadata: dict[str, Any] | None) -> None:
    """Langfuse's handler's link of a prompt to LangChain generations: a run with a Langfuse prompt
    client as ``metadata["langfuse_prompt"]`` (a prompt template's, as Langfuse documents it) leaves
    it to its ``parent`` run; the next generation inside that run takes it, unless a prompt is named
    in its metadata (``run_metadata``). A generation with no such ancestor takes the one in its own
    metadata, if any. ``run``: a ``langchain_runs.Run`` just started."""
    given = metadata.get(PROMPT_OBJECT) if metadata else None
    if run.obs.type is not ObservationType.GENERATION:
        if given is not None and parent is not None:
            parent.prompt = given
        return
    ancestor = parent
    for _ in range(_MAX_PROMPT_DEPTH):
        if ancestor is None or ancestor.prompt is not None:
            break
        ancestor = runs.get(ancestor.parent_run_id) if ancestor.parent_run_id is not None else None
    if ancestor is not None and ancestor.prompt is not None:
        given, ancestor.prompt = ancestor.prompt, None
    if given is not None and "prompt" not in run.obs.fields:
        run.obs.update(prompt=given)


def own_tags(tags: list[str] | None, inherited: list[str] | None) -> list[str]:
    """The user's tags of a run that its parent run does not have (LangChain gives a run its
    parent's inheritable tags too), LangChain's and LangGraph's bookkeeping tags left out."""
    if not tags:
        return []
    return [str(tag) for tag in tags
            if not (type(tag) is str and (tag.startswith(_BOOKKEEPING) or tag == _NO_STREAM))
            and not (inherited and tag in inherited)]


def trace_tags(obs: Observation, inherited: tuple[str, ...], *added: list[str]) -> tuple[str, ...]:
    """The trace tags of a run: its parent run's (``inherited``) and ``added``, with those of the
    current ``trace_attributes``; set on ``obs``'s span when they are more than those (which the
    span has from its start)."""
    if not inherited and not any(added):
        return ()
    context = (current_trace_attributes() or {}).get(schema.TRACE_TAGS) or ()
    merged = tuple(dict.fromkeys([*context, *inherited, *(tag for tags in added for tag in tags)]))
    if not set(merged).issubset(context):
        obs.span.set_attribute(schema.TRACE_TAGS, list(merged))
    return merged


#: Content block types of a tool's media: only their payloads are noted (a list of records a tool
#: returns, a ``json`` block, is its result as it is, long texts and ``data`` fields too).
_MEDIA_PARTS = frozenset({"image", "image_url", "file", "audio", "input_audio", "video", "document"})
#: ... and the parts whose text may hold a data URL (``Screenshot taken: data:image/png;base64,...``).
_NOTED_PARTS = _MEDIA_PARTS | {"text"}


def _noted_part(part: Any) -> Any:
    """One part of a tool's content as recorded: a media part's payload, a data URL in a text (a
    string part's, a text part's), noted as a message's are; ``part`` itself if it has none."""
    if type(part) is str:
        return without_data_urls(part)
    if type(part) is dict and part.get("type") in _NOTED_PARTS:
        return without_media([{"content": [part]}])[0]["content"][0]
    return part


def tool_result(output: Any) -> Any:
    """A tool run's result: a ``ToolMessage``'s content (the inline payloads of its media parts,
    ``_MEDIA_PARTS``, and the data URLs in its text noted as a message's, ``without_media``), and
    its artifact when it has one (its first ``MAX_DOCUMENTS`` items if a list: documents as a
    retrieval records them; the others counted as ``tool_artifact_items_truncated``); any other
    output as it is."""
    content = getattr(output, "content", output)
    artifact = getattr(output, "artifact", None) if content is not output else None
    if type(content) is str:  # a tool's text: a screenshot's data URL in it noted
        content = without_data_urls(content)
    elif type(content) is list:  # a screenshot, a text that holds one: noted, as a message's
        noted = [_noted_part(part) for part in content]
        if any(kept is not part for kept, part in zip(noted, content, strict=True)):
            content = noted
    if artifact is None:
        return content
    result: dict[str, Any] = {"content": content}
    if isinstance(artifact, list | tuple):
        kept = [document_fields(item) if hasattr(item, "page_content") else item
                for item in islice(artifact, MAX_DOCUMENTS)]
        if len(artifact) > len(kept):
            count("tool_artifact_items_truncated", len(artifact) - len(kept))
            result["artifact_items"] = len(artifact)
        artifact = kept
    result["artifact"] = artifact
    return result
