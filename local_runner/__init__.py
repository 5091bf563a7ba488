"""The local runner: genjobs on a laptop without Docker (embedded PostgreSQL, handlers served over HTTP)."""
