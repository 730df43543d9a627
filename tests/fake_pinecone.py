"""A loopback stand-in for Pinecone's data-plane REST API: query, upsert, update, delete, fetch
(a GET), fetch by metadata (equality filters, paged), list (a GET), and the records API: upsert
(NDJSON, ``/records/namespaces/{namespace}/upsert``) and search (``.../search``)."""

from __future__ import annotations

import json
import math
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote

from autotrace.testing._loopback import LoopbackServer


class FakePinecone(LoopbackServer):
    """Keeps vectors per namespace and answers cosine-similarity queries."""

    def __init__(self) -> None:
        self.vectors: dict[str, dict[str, tuple[list[float], dict[str, Any]]]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.headers.get("Content-Type") == "application/x-ndjson":  # upsert_records: one record a line
            body = {"records": [json.loads(line) for line in raw.splitlines() if line.strip()]}
        else:
            body = json.loads(raw or b"{}")
        path, _, query = handler.path.partition("?")
        if handler.command == "GET":  # the query string as the body: each key's values, one alone as itself
            body = {k: v if k == "ids" else v[0] for k, v in parse_qs(query).items()}
        self.requests.append((path, body))
        self.answer(handler, self.handle(path, body))

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, payload: Any, status: int = 200) -> None:
        """Answer the request ``handler`` holds with ``payload`` as JSON."""
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.startswith("/records/namespaces/"):
            records = self.vectors.setdefault(unquote(path.split("/")[3]), {})
            if path.endswith("/upsert"):  # a record's fields are kept as its metadata; it has no vector
                records.update((r["_id"], ([], {k: v for k, v in r.items() if k != "_id"})) for r in body["records"])
                return {}
            return self.search(records, body)
        namespace = self.vectors.setdefault(body.get("namespace", ""), {})
        if path.endswith("/vectors/upsert"):
            for vector in body["vectors"]:
                namespace[vector["id"]] = (vector["values"], vector.get("metadata") or {})
            return {"upsertedCount": len(body["vectors"])}
        if path.endswith("/vectors/update"):
            return self.update(namespace, body)
        if path.endswith("/vectors/fetch"):
            return self.fetched(body, [vid for vid in body.get("ids", []) if vid in namespace])
        if path.endswith("/vectors/fetch_by_metadata"):
            return self.fetch_by_metadata(namespace, body)
        if path.endswith("/vectors/list"):
            listed = sorted(vid for vid in namespace if vid.startswith(body.get("prefix", "")))
            return {"vectors": [{"id": vid} for vid in listed], "namespace": body.get("namespace", ""),
                    "usage": {"readUnits": 1}}
        if path.endswith("/vectors/delete"):
            for vector_id in body.get("ids", []):
                namespace.pop(vector_id, None)
            return {}
        query = body["vector"]
        scored = sorted(((self._cosine(query, values), vid, meta) for vid, (values, meta) in namespace.items()),
                        reverse=True)[: body.get("topK", 10)]
        matches = [{"id": vid, "score": score, **({"metadata": meta} if body.get("includeMetadata") else {})}
                   for score, vid, meta in scored]
        return {"matches": matches, "namespace": body.get("namespace", ""), "usage": {"readUnits": 1}}

    def fetched(self, body: dict[str, Any], ids: list[str], **extra: Any) -> dict[str, Any]:
        """The vectors ``ids`` of the body's namespace, in that order, as a fetch returns them."""
        namespace = self.vectors.get(body.get("namespace", ""), {})
        vectors = {vid: {"id": vid, "values": namespace[vid][0], "metadata": namespace[vid][1]} for vid in ids}
        return {"vectors": vectors, "namespace": body.get("namespace", ""), "usage": {"readUnits": 1}, **extra}

    def fetch_by_metadata(self, namespace: dict[str, tuple[list[float], dict[str, Any]]],
                          body: dict[str, Any]) -> dict[str, Any]:
        """The vectors (by id) whose metadata equals every ``filter`` value, ``limit`` a page;
        ``paginationToken`` is the index where the page starts."""
        matched = sorted(vid for vid, (_, meta) in namespace.items()
                         if all(meta.get(k) == v for k, v in body["filter"].items()))
        start = int(body.get("paginationToken") or 0)
        end = start + body.get("limit", 100)
        pagination = {"pagination": {"next": str(end)}} if end < len(matched) else {}
        return self.fetched(body, matched[start:end], **pagination)

    @staticmethod
    def update(namespace: dict[str, tuple[list[float], dict[str, Any]]], body: dict[str, Any]) -> dict[str, Any]:
        """Set the values and merge ``setMetadata`` of ``id``, or of each vector ``filter`` matches."""
        filter_ = body.get("filter")
        ids = [body["id"]] if "id" in body else [vid for vid, (_, meta) in namespace.items()
                                                 if all(meta.get(k) == v for k, v in (filter_ or {}).items())]
        for vid in ids:
            values, meta = namespace[vid]
            namespace[vid] = (body.get("values", values), {**meta, **body.get("setMetadata", {})})
        return {"matchedRecords": len(ids)} if filter_ is not None else {}

    def search(self, namespace: dict[str, tuple[list[float], dict[str, Any]]], body: dict[str, Any]) -> dict[str, Any]:
        """A records search: by vector, by a stored record's id, or by text (each record's ``text``
        scored by the share of the query's words it holds, a stand-in for server-side embedding)."""
        query = body["query"]
        if query.get("inputs"):
            words = set(query["inputs"]["text"].lower().split())

            def score(values: list[float], meta: dict[str, Any]) -> float:
                return len(words & set(str(meta.get("text", "")).lower().split())) / len(words)
        else:
            vector = query["vector"]["values"] if "vector" in query else namespace[query["id"]][0]

            def score(values: list[float], meta: dict[str, Any]) -> float:
                return self._cosine(vector, values)
        scored = sorted(((score(values, meta), vid, meta) for vid, (values, meta) in namespace.items()),
                        key=lambda hit: (-hit[0], hit[1]))[: query["top_k"]]
        fields = body.get("fields")
        hits = [{"_id": vid, "_score": value,
                 "fields": {k: v for k, v in meta.items() if fields is None or "*" in fields or k in fields}}
                for value, vid, meta in scored]
        return {"result": {"hits": hits}, "usage": {"read_units": 1}}

    @staticmethod
    def _cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / ((math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) or 1.0)
