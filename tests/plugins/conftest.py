from tests.airflow.conftest import airflow_db  # noqa: F401  (a migrated Airflow metadata DB, for the plugin tests)
