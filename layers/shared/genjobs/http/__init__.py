"""HTTP glue for API Gateway HTTP API (payload v2): resolver factory, error mapping, merchant identity."""
