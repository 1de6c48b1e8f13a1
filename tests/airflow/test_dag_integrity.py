"""Every DAG file imports cleanly and follows the house rules."""

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS), safe_mode=False)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_a_dag(dagbag):
    files_with_dags = {Path(d.fileloc).name for d in dagbag.dags.values()}
    assert {p.name for p in DAG_FILES} <= files_with_dags


@pytest.mark.parametrize("key", ["owner", "retries", "tags"])
def test_house_rules(dagbag, key):
    assert dagbag.dags, "no DAGs found"
    for dag_id, dag in dagbag.dags.items():
        assert dag_id.startswith("brygga_"), dag_id
        if key == "tags":
            assert "brygga" in dag.tags, dag_id
            continue
        for t in dag.tasks:
            value = getattr(t, key)
            if key == "owner":
                assert value == "brygga", (dag_id, t.task_id)
            else:
                assert value is not None and value >= 0, (dag_id, t.task_id)
        assert any(t.retries > 0 for t in dag.tasks), f"{dag_id}: no task retries"


def test_dag_files_stay_thin():
    """Business rules live in brygga/; DAG files only wire tasks (no XML parsing, no SQL)."""
    for p in DAG_FILES:
        text = p.read_text()
        for forbidden in ("lxml", "etree", "sqlalchemy", "requests.", "zeep"):
            assert forbidden not in text, f"{p.name} uses {forbidden}"


def test_no_run_or_task_can_hang_forever(dagbag):
    """One stuck run never blocks the next (a DAG with max_active_runs=1 behind it): every DAG has
    a dagrun_timeout, every task an execution_timeout that fits inside it."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.dagrun_timeout is not None, f"{dag_id}: no dagrun_timeout"
        for t in dag.tasks:
            assert t.execution_timeout is not None, (dag_id, t.task_id)
            assert t.execution_timeout <= dag.dagrun_timeout, (dag_id, t.task_id, t.execution_timeout)
