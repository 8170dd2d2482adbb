"""db4 Python SDK: `Client` (blocking), `AsyncClient` (asyncio) and `errors`.

    from db4client import Client, errors
    with Client("127.0.0.1:7400") as client:
        users = client.collection("users")
        doc = users.create({"name": "Alice"})
        page = users.find(where={"age": {"$gte": 18}}, sort=[("age", "desc")], limit=20)
"""

from db4client import errors
from db4client._cdc import ChangeEvent
from db4client._retry import RetryPolicy
from db4client.aio import AsyncClient
from db4client.client import Client
from db4client.collection import AsyncCollection, Collection
from db4client.results import (
    BulkLoadResult,
    CasResult,
    CommitResult,
    OptimisticResult,
    Page,
    SearchHit,
    SearchResult,
    TransactionResult,
)
from db4client.subscription import AsyncSubscription, Subscription
from db4client.transaction import AsyncTransaction, Transaction

__all__ = ["AsyncClient", "AsyncCollection", "AsyncSubscription", "AsyncTransaction",
           "BulkLoadResult", "CasResult",
           "ChangeEvent", "Client", "Collection", "CommitResult", "OptimisticResult", "Page",
           "RetryPolicy", "SearchHit", "SearchResult", "Subscription", "Transaction",
           "TransactionResult", "errors"]
