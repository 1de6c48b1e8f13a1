"""Brygga benchmarks. ``python -m bench`` runs every module here that has ``main(argv)``;
``python -m bench.<module> --quick`` runs one. Results go to ``bench/results/``."""
