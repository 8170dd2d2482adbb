"""gRPC plumbing shared by node, router and client: error translation, channel and server options.

It imports grpc and db4core only; the rest of the logic stays in plain functions elsewhere.
"""
