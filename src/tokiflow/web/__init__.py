"""HTTP: ping front doors, the API, pages and the system endpoints."""
