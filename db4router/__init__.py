"""db4 router: stateless placement, scatter-gather and coordination in front of storage nodes."""
