"""loopml: an end-to-end MLOps loop on tools the field already trusts."""

__version__ = "0.1.0"
