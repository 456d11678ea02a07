"""FastAPI application: portal pages, REST API, OAuth callbacks."""
