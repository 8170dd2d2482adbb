from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Isolation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISOLATION_UNSPECIFIED: _ClassVar[Isolation]
    ISOLATION_SERIALIZABLE: _ClassVar[Isolation]
    ISOLATION_READ_COMMITTED: _ClassVar[Isolation]

class TxnOpKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TXN_OP_KIND_UNSPECIFIED: _ClassVar[TxnOpKind]
    TXN_OP_KIND_CREATE: _ClassVar[TxnOpKind]
    TXN_OP_KIND_UPDATE: _ClassVar[TxnOpKind]
    TXN_OP_KIND_REPLACE: _ClassVar[TxnOpKind]
    TXN_OP_KIND_UPSERT: _ClassVar[TxnOpKind]
    TXN_OP_KIND_DELETE: _ClassVar[TxnOpKind]
ISOLATION_UNSPECIFIED: Isolation
ISOLATION_SERIALIZABLE: Isolation
ISOLATION_READ_COMMITTED: Isolation
TXN_OP_KIND_UNSPECIFIED: TxnOpKind
TXN_OP_KIND_CREATE: TxnOpKind
TXN_OP_KIND_UPDATE: TxnOpKind
TXN_OP_KIND_REPLACE: TxnOpKind
TXN_OP_KIND_UPSERT: TxnOpKind
TXN_OP_KIND_DELETE: TxnOpKind

class SortField(_message.Message):
    __slots__ = ("path", "descending")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    path: str
    descending: bool
    def __init__(self, path: _Optional[str] = ..., descending: _Optional[bool] = ...) -> None: ...

class FindRequest(_message.Message):
    __slots__ = ("collection", "where", "sort", "limit", "cursor", "shard_id", "explain")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    collection: str
    where: bytes
    sort: _containers.RepeatedCompositeFieldContainer[SortField]
    limit: int
    cursor: str
    shard_id: str
    explain: bool
    def __init__(self, collection: _Optional[str] = ..., where: _Optional[bytes] = ..., sort: _Optional[_Iterable[_Union[SortField, _Mapping]]] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ..., shard_id: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class FindResponse(_message.Message):
    __slots__ = ("documents", "cursor", "has_more", "plan")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedScalarFieldContainer[bytes]
    cursor: str
    has_more: bool
    plan: str
    def __init__(self, documents: _Optional[_Iterable[bytes]] = ..., cursor: _Optional[str] = ..., has_more: _Optional[bool] = ..., plan: _Optional[str] = ...) -> None: ...

class CountRequest(_message.Message):
    __slots__ = ("collection", "where", "shard_id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    where: bytes
    shard_id: str
    def __init__(self, collection: _Optional[str] = ..., where: _Optional[bytes] = ..., shard_id: _Optional[str] = ...) -> None: ...

class CountResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class InsertManyRequest(_message.Message):
    __slots__ = ("collection", "documents")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    documents: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, collection: _Optional[str] = ..., documents: _Optional[_Iterable[bytes]] = ...) -> None: ...

class InsertManyResponse(_message.Message):
    __slots__ = ("documents",)
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, documents: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetManyRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetManyResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[GetResponse]
    def __init__(self, items: _Optional[_Iterable[_Union[GetResponse, _Mapping]]] = ...) -> None: ...

class DeleteManyRequest(_message.Message):
    __slots__ = ("collection", "ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteManyResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, deleted: _Optional[_Iterable[bool]] = ...) -> None: ...

class IndexField(_message.Message):
    __slots__ = ("path", "descending")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DESCENDING_FIELD_NUMBER: _ClassVar[int]
    path: str
    descending: bool
    def __init__(self, path: _Optional[str] = ..., descending: _Optional[bool] = ...) -> None: ...

class Index(_message.Message):
    __slots__ = ("name", "collection", "fields")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    collection: str
    fields: _containers.RepeatedCompositeFieldContainer[IndexField]
    def __init__(self, name: _Optional[str] = ..., collection: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[IndexField, _Mapping]]] = ...) -> None: ...

class CreateIndexRequest(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: Index
    def __init__(self, index: _Optional[_Union[Index, _Mapping]] = ...) -> None: ...

class IndexProgress(_message.Message):
    __slots__ = ("shards_done", "shards_total", "documents", "done", "index")
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    shards_done: int
    shards_total: int
    documents: int
    done: bool
    index: Index
    def __init__(self, shards_done: _Optional[int] = ..., shards_total: _Optional[int] = ..., documents: _Optional[int] = ..., done: _Optional[bool] = ..., index: _Optional[_Union[Index, _Mapping]] = ...) -> None: ...

class DropIndexRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DropIndexResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListIndexesRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ListIndexesResponse(_message.Message):
    __slots__ = ("indexes",)
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    indexes: _containers.RepeatedCompositeFieldContainer[Index]
    def __init__(self, indexes: _Optional[_Iterable[_Union[Index, _Mapping]]] = ...) -> None: ...

class RangeBound(_message.Message):
    __slots__ = ("value", "inclusive")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    INCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    inclusive: bool
    def __init__(self, value: _Optional[bytes] = ..., inclusive: _Optional[bool] = ...) -> None: ...

class QueryRangeRequest(_message.Message):
    __slots__ = ("index", "start", "end", "limit", "cursor")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    index: str
    start: RangeBound
    end: RangeBound
    limit: int
    cursor: str
    def __init__(self, index: _Optional[str] = ..., start: _Optional[_Union[RangeBound, _Mapping]] = ..., end: _Optional[_Union[RangeBound, _Mapping]] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "partition_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    partition_key: str
    def __init__(self, name: _Optional[str] = ..., partition_key: _Optional[str] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "partition_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    partition_key: str
    def __init__(self, name: _Optional[str] = ..., partition_key: _Optional[str] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection", "created")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    created: bool
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateRequest(_message.Message):
    __slots__ = ("collection", "document")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document: bytes
    def __init__(self, collection: _Optional[str] = ..., document: _Optional[bytes] = ...) -> None: ...

class DocumentResponse(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: bytes
    def __init__(self, document: _Optional[bytes] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("collection", "id", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., partition: _Optional[bytes] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "document", "token")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    found: bool
    document: bytes
    token: int
    def __init__(self, found: _Optional[bool] = ..., document: _Optional[bytes] = ..., token: _Optional[int] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("collection", "id", "patch", "expected_version", "partition", "condition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    patch: bytes
    expected_version: int
    partition: bytes
    condition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., patch: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., partition: _Optional[bytes] = ..., condition: _Optional[bytes] = ...) -> None: ...

class ReplaceRequest(_message.Message):
    __slots__ = ("collection", "id", "document", "expected_version", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    document: bytes
    expected_version: int
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., document: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., partition: _Optional[bytes] = ...) -> None: ...

class UpsertRequest(_message.Message):
    __slots__ = ("collection", "document")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    document: bytes
    def __init__(self, collection: _Optional[str] = ..., document: _Optional[bytes] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("collection", "id", "expected_version", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    expected_version: int
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., expected_version: _Optional[int] = ..., partition: _Optional[bytes] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class GetRoutingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetRoutingResponse(_message.Message):
    __slots__ = ("epoch", "ring", "placement", "nodes")
    class PlacementEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class NodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    RING_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    ring: str
    placement: _containers.ScalarMap[str, str]
    nodes: _containers.ScalarMap[str, str]
    def __init__(self, epoch: _Optional[int] = ..., ring: _Optional[str] = ..., placement: _Optional[_Mapping[str, str]] = ..., nodes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ShardForRequest(_message.Message):
    __slots__ = ("collection", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., partition: _Optional[bytes] = ...) -> None: ...

class ShardForResponse(_message.Message):
    __slots__ = ("shard_id", "node_id", "token", "epoch")
    SHARD_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    shard_id: str
    node_id: str
    token: int
    epoch: int
    def __init__(self, shard_id: _Optional[str] = ..., node_id: _Optional[str] = ..., token: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class IncrementRequest(_message.Message):
    __slots__ = ("collection", "id", "deltas", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    DELTAS_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    deltas: bytes
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., deltas: _Optional[bytes] = ..., partition: _Optional[bytes] = ...) -> None: ...

class TxnRead(_message.Message):
    __slots__ = ("collection", "id", "version", "token", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    version: int
    token: int
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., version: _Optional[int] = ..., token: _Optional[int] = ..., partition: _Optional[bytes] = ...) -> None: ...

class TxnOp(_message.Message):
    __slots__ = ("kind", "collection", "id", "body", "expected_version", "partition", "token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: TxnOpKind
    collection: str
    id: str
    body: bytes
    expected_version: int
    partition: bytes
    token: int
    def __init__(self, kind: _Optional[_Union[TxnOpKind, str]] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., body: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., partition: _Optional[bytes] = ..., token: _Optional[int] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("txid", "isolation", "reads", "ops")
    TXID_FIELD_NUMBER: _ClassVar[int]
    ISOLATION_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    OPS_FIELD_NUMBER: _ClassVar[int]
    txid: str
    isolation: Isolation
    reads: _containers.RepeatedCompositeFieldContainer[TxnRead]
    ops: _containers.RepeatedCompositeFieldContainer[TxnOp]
    def __init__(self, txid: _Optional[str] = ..., isolation: _Optional[_Union[Isolation, str]] = ..., reads: _Optional[_Iterable[_Union[TxnRead, _Mapping]]] = ..., ops: _Optional[_Iterable[_Union[TxnOp, _Mapping]]] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("documents", "found", "txid", "shards")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    documents: _containers.RepeatedScalarFieldContainer[bytes]
    found: _containers.RepeatedScalarFieldContainer[bool]
    txid: str
    shards: int
    def __init__(self, documents: _Optional[_Iterable[bytes]] = ..., found: _Optional[_Iterable[bool]] = ..., txid: _Optional[str] = ..., shards: _Optional[int] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("collections", "from_token", "start", "consumer", "heartbeat_ms")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    FROM_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedScalarFieldContainer[str]
    from_token: str
    start: str
    consumer: str
    heartbeat_ms: int
    def __init__(self, collections: _Optional[_Iterable[str]] = ..., from_token: _Optional[str] = ..., start: _Optional[str] = ..., consumer: _Optional[str] = ..., heartbeat_ms: _Optional[int] = ...) -> None: ...

class ChangeEvent(_message.Message):
    __slots__ = ("op", "collection", "id", "before", "after", "version", "shard", "lsn", "txid", "ts", "token")
    OP_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    LSN_FIELD_NUMBER: _ClassVar[int]
    TXID_FIELD_NUMBER: _ClassVar[int]
    TS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    op: str
    collection: str
    id: str
    before: bytes
    after: bytes
    version: int
    shard: str
    lsn: int
    txid: str
    ts: int
    token: str
    def __init__(self, op: _Optional[str] = ..., collection: _Optional[str] = ..., id: _Optional[str] = ..., before: _Optional[bytes] = ..., after: _Optional[bytes] = ..., version: _Optional[int] = ..., shard: _Optional[str] = ..., lsn: _Optional[int] = ..., txid: _Optional[str] = ..., ts: _Optional[int] = ..., token: _Optional[str] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("events", "token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ChangeEvent]
    token: str
    def __init__(self, events: _Optional[_Iterable[_Union[ChangeEvent, _Mapping]]] = ..., token: _Optional[str] = ...) -> None: ...

class AcknowledgeRequest(_message.Message):
    __slots__ = ("consumer", "token")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    token: str
    def __init__(self, consumer: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

class AcknowledgeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SearchField(_message.Message):
    __slots__ = ("path", "weight")
    PATH_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    path: str
    weight: float
    def __init__(self, path: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class SearchIndex(_message.Message):
    __slots__ = ("name", "collection", "fields", "tokenizer")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TOKENIZER_FIELD_NUMBER: _ClassVar[int]
    name: str
    collection: str
    fields: _containers.RepeatedCompositeFieldContainer[SearchField]
    tokenizer: str
    def __init__(self, name: _Optional[str] = ..., collection: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[SearchField, _Mapping]]] = ..., tokenizer: _Optional[str] = ...) -> None: ...

class CreateSearchIndexRequest(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: SearchIndex
    def __init__(self, index: _Optional[_Union[SearchIndex, _Mapping]] = ...) -> None: ...

class SearchIndexProgress(_message.Message):
    __slots__ = ("shards_done", "shards_total", "documents", "done", "index")
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    shards_done: int
    shards_total: int
    documents: int
    done: bool
    index: SearchIndex
    def __init__(self, shards_done: _Optional[int] = ..., shards_total: _Optional[int] = ..., documents: _Optional[int] = ..., done: _Optional[bool] = ..., index: _Optional[_Union[SearchIndex, _Mapping]] = ...) -> None: ...

class DropSearchIndexRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DropSearchIndexResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSearchIndexesRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ListSearchIndexesResponse(_message.Message):
    __slots__ = ("indexes",)
    INDEXES_FIELD_NUMBER: _ClassVar[int]
    indexes: _containers.RepeatedCompositeFieldContainer[SearchIndex]
    def __init__(self, indexes: _Optional[_Iterable[_Union[SearchIndex, _Mapping]]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("index", "query", "limit", "cursor", "where", "highlight_open", "highlight_close", "snippet_tokens")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHT_OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHT_CLOSE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    index: str
    query: str
    limit: int
    cursor: str
    where: bytes
    highlight_open: str
    highlight_close: str
    snippet_tokens: int
    def __init__(self, index: _Optional[str] = ..., query: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ..., where: _Optional[bytes] = ..., highlight_open: _Optional[str] = ..., highlight_close: _Optional[str] = ..., snippet_tokens: _Optional[int] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("id", "score", "document", "highlights", "snippet")
    class HighlightsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    HIGHLIGHTS_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    document: bytes
    highlights: _containers.ScalarMap[str, str]
    snippet: str
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., document: _Optional[bytes] = ..., highlights: _Optional[_Mapping[str, str]] = ..., snippet: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("hits", "cursor", "has_more")
    HITS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    cursor: str
    has_more: bool
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., cursor: _Optional[str] = ..., has_more: _Optional[bool] = ...) -> None: ...
