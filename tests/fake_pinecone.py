"""A loopback stand-in for Pinecone's data-plane REST API: query, upsert, delete."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakePinecone:
    """Keeps vectors per namespace and answers cosine-similarity queries."""

    def __init__(self) -> None:
        self.vectors: dict[str, dict[str, tuple[list[float], dict[str, Any]]]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                fake.requests.append((self.path, body))
                reply = fake.handle(self.path, body)
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
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

    @staticmethod
    def _cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / ((math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) or 1.0)
