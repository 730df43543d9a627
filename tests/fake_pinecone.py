"""A loopback stand-in for Pinecone's data-plane REST API: query, upsert, delete, and the records
search (``/records/namespaces/{namespace}/search``)."""

from __future__ import annotations

import json
import math
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from autotrace.testing._loopback import LoopbackServer


class FakePinecone(LoopbackServer):
    """Keeps vectors per namespace and answers cosine-similarity queries."""

    def __init__(self) -> None:
        self.vectors: dict[str, dict[str, tuple[list[float], dict[str, Any]]]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)) or b"{}")
        self.requests.append((handler.path, body))
        data = json.dumps(self.handle(handler.path, body)).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def handle(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.startswith("/records/namespaces/") and path.endswith("/search"):
            return self.search(self.vectors.setdefault(unquote(path.split("/")[3]), {}), body)
        namespace = self.vectors.setdefault(body.get("namespace", ""), {})
        if path.endswith("/vectors/upsert"):
            for vector in body["vectors"]:
                namespace[vector["id"]] = (vector["values"], vector.get("metadata") or {})
            return {"upsertedCount": len(body["vectors"])}
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
