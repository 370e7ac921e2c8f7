"""The native REST API under /api/v1/, described by an OpenAPI document built from its routes."""
