"""The FastAPI service and the `searchrec` command line."""
