"""`python -m api.cli`: the `searchrec` command without its console script."""

from api.cli import app

if __name__ == "__main__":  # a worker process spawned by `serve --workers` imports this without running it
    app()
