"""`python -m api.cli`: the `searchrec` command without its console script."""

from api.cli import app

if __name__ == "__main__":
    app()
