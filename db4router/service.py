"""The public Db4 gRPC servicer: unwrap the request, call DocOps, wrap the answer."""

from __future__ import annotations

import contextlib
from typing import TypeAlias

import grpc

from db4.v1 import node_pb2, router_pb2, router_pb2_grpc
from db4core import documents
from db4core.errors import NotFoundError
from db4core.hashing import token_for
from db4core.names import validate_collection
from db4router.batches import Batches
from db4router.collections import Collections
from db4router.dispatch import NODE_TIMEOUT_S, Dispatcher
from db4router.docops import DocOps
from db4router.indexes import Indexes
from db4router.queries import Queries, StreamGate
from db4router.routing import node_for
from db4router.search import Search
from db4router.searchdefs import SearchIndexes
from db4router.subscribe import Subscriptions
from db4router.txn import Coordinator
from db4rpc.status import servicer_method, servicer_stream

Ctx: TypeAlias = grpc.aio.ServicerContext


def _opt(request, field: str):
    """An optional proto3 field's value, None when unset."""
    return getattr(request, field) if request.HasField(field) else None


class Db4Service(router_pb2_grpc.Db4Servicer):
    """Every public document RPC."""

    def __init__(self, dispatcher: Dispatcher, collections: Collections,
                 streams: StreamGate | None = None) -> None:
        self.dispatcher = dispatcher
        self.collections = collections
        self.ops = DocOps(dispatcher, collections)
        self.queries = Queries(dispatcher, collections)
        self.batches = Batches(dispatcher, collections, self.ops)
        self.coordinator = Coordinator(self.ops)
        self.indexes = Indexes(dispatcher)
        self.search_indexes = SearchIndexes(dispatcher)
        self.searcher = Search(dispatcher, self.search_indexes, self.queries.pruned)
        self.streams = streams or StreamGate()
        self.subscriptions = Subscriptions(dispatcher)

    async def count_documents(self, collection: str) -> int:
        """Documents of a collection over every shard (from the nodes' shard stats)."""

        async def stats(stub, shard, epoch):
            req = node_pb2.ShardStatsRequest(shard_ids=[shard], epoch=epoch)
            resp = await stub.ShardStats(req, timeout=NODE_TIMEOUT_S)
            return sum(s.collections.get(collection, 0) for s in resp.shards)

        return sum((await self.dispatcher.every_shard(stats)).values())

    @servicer_method
    async def CreateCollection(self, request: router_pb2.CreateCollectionRequest, context: Ctx):
        info, created = await self.collections.create(
            request.name, request.partition_key, self.count_documents
        )
        return router_pb2.CreateCollectionResponse(
            collection=router_pb2.Collection(name=info.name, partition_key=info.partition_key),
            created=created,
        )

    @servicer_method
    async def GetCollection(self, request: router_pb2.GetCollectionRequest, context: Ctx):
        info = await self.collections.get(request.name)
        if info is None:
            raise NotFoundError(f"collection {request.name!r} does not exist")
        return router_pb2.Collection(name=info.name, partition_key=info.partition_key)

    @servicer_method
    async def Create(self, request: router_pb2.CreateRequest, context: Ctx):
        doc = await self.ops.create(request.collection, request.document)
        return router_pb2.DocumentResponse(document=doc)

    @servicer_method
    async def Upsert(self, request: router_pb2.UpsertRequest, context: Ctx):
        doc = await self.ops.create(request.collection, request.document, kind="upsert")
        return router_pb2.DocumentResponse(document=doc)

    @servicer_method
    async def Get(self, request: router_pb2.GetRequest, context: Ctx):
        doc, token = await self.ops.get(request.collection, request.id,
                                        _opt(request, "partition"))
        return router_pb2.GetResponse(found=doc is not None, document=doc or b"",
                                      token=token if doc is not None else 0)

    @servicer_method
    async def Update(self, request: router_pb2.UpdateRequest, context: Ctx):
        doc = await self.ops.update(request.collection, request.id, request.patch,
                                    _opt(request, "expected_version"), _opt(request, "partition"),
                                    request.condition)
        return router_pb2.DocumentResponse(document=doc)

    @servicer_method
    async def Increment(self, request: router_pb2.IncrementRequest, context: Ctx):
        doc = await self.ops.increment(request.collection, request.id, request.deltas,
                                       _opt(request, "partition"))
        return router_pb2.DocumentResponse(document=doc)

    @servicer_method
    async def Commit(self, request: router_pb2.CommitRequest, context: Ctx):
        return await self.coordinator.commit(request)

    @servicer_method
    async def Replace(self, request: router_pb2.ReplaceRequest, context: Ctx):
        doc = await self.ops.replace(request.collection, request.id, request.document,
                                     _opt(request, "expected_version"), _opt(request, "partition"))
        return router_pb2.DocumentResponse(document=doc)

    @servicer_method
    async def Delete(self, request: router_pb2.DeleteRequest, context: Ctx):
        deleted = await self.ops.delete(request.collection, request.id,
                                        _opt(request, "expected_version"),
                                        _opt(request, "partition"))
        return router_pb2.DeleteResponse(deleted=deleted)

    @servicer_method
    async def ShardFor(self, request: router_pb2.ShardForRequest, context: Ctx):
        validate_collection(request.collection)
        token = token_for(documents.decode(request.partition, "partition"))
        topo = self.collections.view.require()
        shard = self.dispatcher.cache.shard_for(topo, token)
        return router_pb2.ShardForResponse(shard_id=shard, node_id=node_for(topo, shard),
                                           token=token, epoch=topo.epoch)

    @servicer_method
    async def GetRouting(self, request: router_pb2.GetRoutingRequest, context: Ctx):
        view = self.collections.view
        topo = view.require()
        return router_pb2.GetRoutingResponse(epoch=topo.epoch, ring=topo.ring.to_json(),
                                             placement=dict(topo.placement),
                                             nodes=dict(view.nodes))

    @servicer_method
    async def Find(self, request: router_pb2.FindRequest, context: Ctx):
        return await self.queries.find(request)

    @servicer_stream
    async def Iterate(self, request: router_pb2.FindRequest, context: Ctx):
        plan = await self.queries.plan(request)
        await self.streams.run(context, self.queries.iterate(plan, request.cursor))
        return
        yield  # a server-stream handler is an async generator; pages go by context.write

    @servicer_method
    async def Count(self, request: router_pb2.CountRequest, context: Ctx):
        return router_pb2.CountResponse(count=await self.queries.count(request))

    @servicer_method
    async def InsertMany(self, request: router_pb2.InsertManyRequest, context: Ctx):
        docs = await self.batches.insert_many(request.collection, list(request.documents))
        return router_pb2.InsertManyResponse(documents=docs)

    @servicer_method
    async def GetMany(self, request: router_pb2.GetManyRequest, context: Ctx):
        docs = await self.batches.get_many(request.collection, list(request.ids))
        items = [router_pb2.GetResponse(found=d is not None, document=d or b"") for d in docs]
        return router_pb2.GetManyResponse(items=items)

    @servicer_method
    async def DeleteMany(self, request: router_pb2.DeleteManyRequest, context: Ctx):
        deleted = await self.batches.delete_many(request.collection, list(request.ids))
        return router_pb2.DeleteManyResponse(deleted=deleted)

    @servicer_stream
    async def CreateIndex(self, request: router_pb2.CreateIndexRequest, context: Ctx):
        async for progress in self.indexes.create(request.index):
            yield progress

    @servicer_method
    async def DropIndex(self, request: router_pb2.DropIndexRequest, context: Ctx):
        await self.indexes.drop(request.name)
        return router_pb2.DropIndexResponse()

    @servicer_method
    async def ListIndexes(self, request: router_pb2.ListIndexesRequest, context: Ctx):
        return router_pb2.ListIndexesResponse(indexes=self.indexes.listing(request.collection))

    @servicer_method
    async def QueryRange(self, request: router_pb2.QueryRangeRequest, context: Ctx):
        plan, start = self.indexes.plan(request)
        await self.queries.prune(plan, plan.pin)
        after = self.queries.start_position(plan, request.cursor) or start
        page = await self.queries.page(plan, after)
        return router_pb2.FindResponse(documents=page.documents,
                                       cursor=self.queries.cursor_for(plan, page),
                                       has_more=page.has_more)

    @servicer_stream
    async def IterateRange(self, request: router_pb2.QueryRangeRequest, context: Ctx):
        plan, start = self.indexes.plan(request)
        await self.queries.prune(plan, plan.pin)
        await self.streams.run(context, self.queries.iterate(plan, request.cursor, start))
        return
        yield  # as Iterate: pages go by context.write, under the idle timeout

    @servicer_stream
    async def Subscribe(self, request: router_pb2.SubscribeRequest, context: Ctx):
        subscription = await self.subscriptions.open(request)
        with self.streams.admit(context.peer()):
            responses = subscription.responses()
            async with contextlib.aclosing(responses):
                async for response in responses:
                    await self.streams.send(context, response)
        return
        yield  # as Iterate: written by context.write, under the idle timeout

    @servicer_method
    async def Acknowledge(self, request: router_pb2.AcknowledgeRequest, context: Ctx):
        await self.subscriptions.acknowledge(request)
        return router_pb2.AcknowledgeResponse()

    @servicer_stream
    async def CreateSearchIndex(self, request: router_pb2.CreateSearchIndexRequest, context: Ctx):
        async for progress in self.search_indexes.create(request.index):
            yield progress

    @servicer_method
    async def DropSearchIndex(self, request: router_pb2.DropSearchIndexRequest, context: Ctx):
        await self.search_indexes.drop(request.name)
        return router_pb2.DropSearchIndexResponse()

    @servicer_method
    async def ListSearchIndexes(self, request: router_pb2.ListSearchIndexesRequest,
                                context: Ctx):
        return router_pb2.ListSearchIndexesResponse(
            indexes=self.search_indexes.listing(request.collection))

    @servicer_method
    async def Search(self, request: router_pb2.SearchRequest, context: Ctx):
        return await self.searcher.search(request)
