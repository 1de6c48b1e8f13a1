"""Operator command groups of the ``brygga`` CLI (each module: ``register(subparsers)``)."""
