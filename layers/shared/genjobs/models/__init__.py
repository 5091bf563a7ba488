"""Pydantic models shared by services, data access and handlers."""
