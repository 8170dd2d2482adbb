from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("found", "document")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    found: bool
    document: bytes
    def __init__(self, found: _Optional[bool] = ..., document: _Optional[bytes] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("collection", "id", "patch", "expected_version", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    patch: bytes
    expected_version: int
    partition: bytes
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ..., patch: _Optional[bytes] = ..., expected_version: _Optional[int] = ..., partition: _Optional[bytes] = ...) -> None: ...

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
