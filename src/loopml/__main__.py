"""``python -m loopml``: the CLI, for environments without the ``loopml`` script."""

from loopml.cli import app

if __name__ == "__main__":  # pragma: no cover
    app(prog_name="loopml")
