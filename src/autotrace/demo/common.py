"""What the two demo services share: the gRPC method (JSON over gRPC, no protoc) and the tenants."""

from __future__ import annotations

import json
from typing import Any

RETRIEVE = "/rag.Knowledge/Retrieve"
TENANTS = {
    # the card comes first, so the redaction placeholder shows in the tree's short previews
    "acme": "My card 4111 1111 1111 1111 was charged twice for order A-1001, please refund me.",
    "globex": "Where is my order G-77? It should have arrived yesterday.",
}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)
