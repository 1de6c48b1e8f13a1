"""Business rules of the flows: plain Python, tested without Airflow."""
