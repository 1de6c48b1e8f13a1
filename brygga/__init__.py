"""Brygga: integration adapter between Ladok, NyA and local systems.

Plain-Python core (no Airflow imports here): configuration, personnummer, safe XML,
log masking, the adapter's own store and the flows' business rules.
"""

__version__ = "0.1.0"
