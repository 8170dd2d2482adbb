"""Pure logic shared by node, router and client: no grpc, no apsw, nothing else of ours."""
