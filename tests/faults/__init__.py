"""The fault-injection harness (issue 33): ``python -m tests.faults --seed N --store sqlite``."""
