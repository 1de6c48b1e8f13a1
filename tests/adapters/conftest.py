from tests.mappings.conftest import ladok_sim, nya_sim  # noqa: F401  (same simulator fixtures)
