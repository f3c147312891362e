"""``python -m loopml``: the CLI, for environments without the ``loopml`` script."""

from loopml.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
