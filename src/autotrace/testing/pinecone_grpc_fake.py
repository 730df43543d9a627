"""A loopback stand-in for Pinecone's data-plane gRPC service (``VectorService``): upsert, query
(dense, sparse or both, or by a stored vector's id), fetch, fetch by metadata (equality filters,
paged), update (by id or filter, a ``dry_run`` changing nothing) and delete (by ids, filter or all),
on grpcio, for the SDK's own gRPC client (``pinecone.grpc``).

pinecone 10 ships no generated Python modules for its protocol (its gRPC client is compiled):
the messages the fake needs are declared here from the published field numbers of the data
plane's ``VectorService`` (messages in the root package, Struct metadata and filters)."""

from __future__ import annotations

import math
from concurrent import futures
from typing import Any, NamedTuple, Self

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, struct_pb2

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _FLOAT, _UINT32, _INT32, _BOOL = _F.TYPE_STRING, _F.TYPE_FLOAT, _F.TYPE_UINT32, _F.TYPE_INT32, _F.TYPE_BOOL
_STRUCT = ".google.protobuf.Struct"
#: field: (number, type or message name, repeated); a ``"map:Vector"`` field is a map from string.
_MESSAGES: dict[str, dict[str, tuple[int, Any, bool]]] = {
    "SparseValues": {"indices": (1, _UINT32, True), "values": (2, _FLOAT, True)},
    "Vector": {"id": (1, _STRING, False), "values": (2, _FLOAT, True), "metadata": (3, _STRUCT, False),
               "sparse_values": (4, ".SparseValues", False)},
    "ScoredVector": {"id": (1, _STRING, False), "score": (2, _FLOAT, False), "values": (3, _FLOAT, True),
                     "metadata": (4, _STRUCT, False), "sparse_values": (5, ".SparseValues", False)},
    "Usage": {"read_units": (1, _UINT32, False)},
    "Pagination": {"next": (1, _STRING, False)},
    "UpsertRequest": {"vectors": (1, ".Vector", True), "namespace": (2, _STRING, False)},
    "UpsertResponse": {"upserted_count": (1, _UINT32, False)},
    "DeleteRequest": {"ids": (1, _STRING, True), "delete_all": (2, _BOOL, False), "namespace": (3, _STRING, False),
                      "filter": (4, _STRUCT, False)},
    "DeleteResponse": {},
    "FetchRequest": {"ids": (1, _STRING, True), "namespace": (2, _STRING, False)},
    "FetchResponse": {"vectors": (1, "map:Vector", False), "namespace": (2, _STRING, False),
                      "usage": (3, ".Usage", False)},
    "FetchByMetadataRequest": {"namespace": (1, _STRING, False), "filter": (2, _STRUCT, False),
                               "limit": (3, _UINT32, False), "pagination_token": (4, _STRING, False)},
    "FetchByMetadataResponse": {"vectors": (1, "map:Vector", False), "namespace": (2, _STRING, False),
                                "usage": (3, ".Usage", False), "pagination": (4, ".Pagination", False)},
    "QueryRequest": {"namespace": (1, _STRING, False), "top_k": (2, _UINT32, False), "filter": (3, _STRUCT, False),
                     "include_values": (4, _BOOL, False), "include_metadata": (5, _BOOL, False),
                     "vector": (7, _FLOAT, True), "id": (8, _STRING, False),
                     "sparse_vector": (9, ".SparseValues", False)},
    "QueryResponse": {"matches": (2, ".ScoredVector", True), "namespace": (3, _STRING, False),
                      "usage": (4, ".Usage", False)},
    "UpdateRequest": {"id": (1, _STRING, False), "values": (2, _FLOAT, True), "set_metadata": (3, _STRUCT, False),
                      "namespace": (4, _STRING, False), "sparse_values": (5, ".SparseValues", False),
                      "filter": (6, _STRUCT, False), "dry_run": (7, _BOOL, False)},
    "UpdateResponse": {"matched_records": (1, _INT32, False)},
}


def _field(message: descriptor_pb2.DescriptorProto, name: str, number: int, kind: Any, repeated: bool) -> None:
    field = message.field.add(name=name, number=number, json_name=name,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if isinstance(kind, str):
        field.type, field.type_name = _F.TYPE_MESSAGE, kind
    else:
        field.type = kind


def _classes() -> dict[str, Any]:
    """The message classes, built in a pool of their own."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)
    proto = descriptor_pb2.FileDescriptorProto(name="autotrace_fake_pinecone.proto", syntax="proto3",
                                               dependency=["google/protobuf/struct.proto"])
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field, (number, kind, repeated) in fields.items():
            if isinstance(kind, str) and kind.startswith("map:"):  # map<string, kind>: a repeated entry
                entry = message.nested_type.add(name="VectorsEntry")
                entry.options.map_entry = True
                _field(entry, "key", 1, _STRING, False)
                _field(entry, "value", 2, "." + kind[4:], False)
                kind = f".{name}.VectorsEntry"
                repeated = True
            _field(message, field, number, kind, repeated)
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in _MESSAGES}


MESSAGES = _classes()


class Stored(NamedTuple):
    """A vector as the fake keeps it: dense values, metadata, sparse values by index."""

    values: list[float]
    metadata: dict[str, Any]
    sparse: dict[int, float]


Namespace = dict[str, Stored]


class FakePineconeGrpc:
    """``with FakePineconeGrpc() as server: server.host`` — Pinecone's ``VectorService`` on
    127.0.0.1 (plaintext), keeping vectors per namespace and answering queries: a dense vector's
    by cosine similarity, a sparse vector's by dot product (as a sparse index does: only the
    vectors sharing one of its indices match), both's by their sum.
    ``requests`` holds each call's method and request (as a dict), ``metadata`` its metadata."""

    def __init__(self) -> None:
        self.vectors: dict[str, Namespace] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.metadata: list[dict[str, Any]] = []
        self._server: grpc.Server | None = None
        self.port = 0

    def start(self) -> Self:
        handlers = {method: grpc.unary_unary_rpc_method_handler(
            self._serve(method, getattr(self, method.lower())),
            request_deserializer=MESSAGES[f"{method}Request"].FromString,
            response_serializer=MESSAGES[f"{method}Response"].SerializeToString)
            for method in ("Upsert", "Query", "Fetch", "FetchByMetadata", "Update", "Delete")}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("VectorService", handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """The plaintext endpoint, as ``GrpcIndex(host=..., grpc_scheme="http")`` takes it."""
        return f"http://127.0.0.1:{self.port}"

    def _serve(self, method: str, handle: Any) -> Any:
        response_class = MESSAGES[f"{method}Response"]

        def serve(request: Any, context: grpc.ServicerContext) -> Any:
            body = json_format.MessageToDict(request, preserving_proto_field_name=True)
            self.requests.append((method, body))
            self.metadata.append(dict(context.invocation_metadata()))
            return json_format.ParseDict(handle(self.vectors.setdefault(body.get("namespace", ""), {}), body),
                                         response_class())

        return serve

    @staticmethod
    def upsert(namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
        for vector in body["vectors"]:
            namespace[vector["id"]] = Stored(vector.get("values", []), vector.get("metadata") or {},
                                             _sparse(vector.get("sparse_values")))
        return {"upserted_count": len(body["vectors"])}

    def query(self, namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
        """The ``top_k`` best of the vectors a dense query, a sparse one (scored by dot product,
        only vectors sharing one of its indices), both (the sum) or a stored vector's id ask for."""
        dense = body.get("vector") if "vector" in body or "sparse_vector" in body else namespace[body["id"]].values
        sparse = _sparse(body.get("sparse_vector"))
        hits = []
        for vid, stored in namespace.items():
            shared = sparse.keys() & stored.sparse.keys()
            if dense is None and not shared:
                continue
            score = _cosine(dense, stored.values) if dense is not None else 0.0
            hits.append((score + sum(sparse[i] * stored.sparse[i] for i in shared), vid, stored.metadata))
        scored = sorted(hits, key=lambda hit: (-hit[0], hit[1]))[: body.get("top_k", 10)]
        matches = [{"id": vid, "score": score, **({"metadata": meta} if body.get("include_metadata") else {})}
                   for score, vid, meta in scored]
        return {"matches": matches, "namespace": body.get("namespace", ""), "usage": {"read_units": 1}}

    @staticmethod
    def fetched(namespace: Namespace, body: dict[str, Any], ids: list[str], **extra: Any) -> dict[str, Any]:
        """The vectors ``ids`` of ``namespace`` as a fetch returns them."""
        vectors = {vid: {"id": vid, "values": namespace[vid].values, "metadata": namespace[vid].metadata,
                         **_sparse_values(namespace[vid].sparse)} for vid in ids}
        return {"vectors": vectors, "namespace": body.get("namespace", ""), "usage": {"read_units": 1}, **extra}

    def fetch(self, namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
        return self.fetched(namespace, body, [vid for vid in body.get("ids", []) if vid in namespace])

    def fetchbymetadata(self, namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
        """The vectors whose metadata equals every ``filter`` value, ``limit`` a page;
        ``pagination_token`` is the index where the page starts."""
        matched = sorted(vid for vid, stored in namespace.items() if _matches(stored.metadata, body.get("filter")))
        start = int(body.get("pagination_token") or 0)
        end = start + body.get("limit", 100)
        pagination = {"pagination": {"next": str(end)}} if end < len(matched) else {}
        return self.fetched(namespace, body, matched[start:end], **pagination)

    @staticmethod
    def update(namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
        """Set the values (dense, sparse) and merge ``set_metadata`` of ``id``, or of each vector
        ``filter`` matches (how many: ``matched_records``); a ``dry_run`` only counts them."""
        ids = [body["id"]] if body.get("id") else [vid for vid, stored in namespace.items()
                                                   if _matches(stored.metadata, body.get("filter"))]
        for vid in [] if body.get("dry_run") else ids:
            values, meta, sparse = namespace[vid]
            namespace[vid] = Stored(body.get("values", values), {**meta, **body.get("set_metadata", {})},
                                    _sparse(body["sparse_values"]) if "sparse_values" in body else sparse)
        return {"matched_records": len(ids)} if "filter" in body else {}

    @staticmethod
    def delete(namespace: Namespace, body: dict[str, Any]) -> dict[str, Any]:
        """Delete all the namespace's vectors, those ``filter`` matches, or those ``ids`` names."""
        if body.get("delete_all"):
            ids: Any = list(namespace)
        elif "filter" in body:
            ids = [vid for vid, stored in namespace.items() if _matches(stored.metadata, body["filter"])]
        else:
            ids = body.get("ids", [])
        for vector_id in ids:
            namespace.pop(vector_id, None)
        return {}


def _matches(meta: dict[str, Any], filter_: dict[str, Any] | None) -> bool:
    """Equality filters only: ``{"k": v}`` or ``{"k": {"$eq": v}}``."""
    return all(meta.get(k) == (v.get("$eq") if isinstance(v, dict) else v) for k, v in (filter_ or {}).items())


def _sparse(values: dict[str, Any] | None) -> dict[int, float]:
    """Sparse values (``{"indices": [...], "values": [...]}``) by index."""
    return dict(zip((values or {}).get("indices", []), (values or {}).get("values", []), strict=True))


def _sparse_values(sparse: dict[int, float]) -> dict[str, Any]:
    """A stored vector's sparse values as a response carries them (none: no field)."""
    return {"sparse_values": {"indices": list(sparse), "values": list(sparse.values())}} if sparse else {}


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))) or 1.0)
