"""Pluggable, versioned translation between external formats and Brygga's records.

Use ``mappings.registry.select(system, message)``; see ``docs/mappings.md`` for writing one.
"""
