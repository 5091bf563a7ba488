"""genjobs: the shared layer of the generation-jobs backend (database access, domain services, HTTP glue)."""

__version__ = "0.1.0"
