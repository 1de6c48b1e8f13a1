"""``brygga publications list|show``: the offer-export history on the command line."""

import json
import os
import subprocess
import sys

import pytest

from brygga import cli
from tests.plugins.seed import PNR_A, seed


@pytest.fixture
def seeded(store):
    return store, seed(store)


def _run(capsys, *argv) -> tuple[int, str]:
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_list_newest_first_with_filters(seeded, capsys):
    store, ids = seeded
    rc, out = _run(capsys, "publications", "list", "--url", store.url)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["id", "round", "kind", "mode"]
    assert [ln.split()[0] for ln in lines[1:4]] == [str(ids["other"]), str(ids["dry"]), str(ids["real"])]
    assert "anna.operator" in out and "bo.operator" in out and "3 of 3" in out

    rc, out = _run(capsys, "publications", "list", "--url", store.url, "--round", "HT2027", "--dry-run", "no")
    assert rc == 0 and [ln.split()[0] for ln in out.splitlines()[1:-1]] == [str(ids["real"])]
    assert "partial" in out

    rc, out = _run(capsys, "publications", "list", "--url", store.url, "--kind", "programme-internal", "--json")
    doc = json.loads(out)
    assert doc["total"] == 1 and doc["rows"][0]["triggered_by"] == "bo.operator"


def test_show_items_and_nyas_answer(seeded, capsys):
    store, ids = seeded
    rc, out = _run(capsys, "publications", "show", str(ids["real"]), "--url", store.url)
    assert rc == 0
    assert f"publication {ids['real']}: HT2027 ordinary (real) - partial" in out
    assert "triggered by anna.operator" in out
    item_lines = {ln.split()[0] + ":" + ln.split()[1] for ln in out.splitlines() if ln.split()[:1] and
                  ln.split()[0] in ("new", "changed", "withdrawn", "invalid", "unchanged")}
    assert item_lines == {"new:27611", "new:27612", "withdrawn:-", "invalid:27614"}  # unchanged left out
    assert "created" in out and "already published" in out and "dead x1" in out
    assert "19900101-****" in out and PNR_A not in out  # masked, also inside messages
    assert "publication.start" in out and "publication.finish" in out

    rc, out = _run(capsys, "publications", "show", str(ids["real"]), "--url", store.url, "--status", "rejected",
                   "--json")
    doc = json.loads(out)
    assert [it["tillfalleskod"] for it in doc["items"]["rows"]] == ["27612"]
    assert doc["counts"]["action"]["new"] == 2

    rc, out = _run(capsys, "publications", "show", str(ids["real"]), "--url", store.url, "--all")
    assert "unchanged" in out


def test_show_unknown_publication_fails(seeded, capsys):
    store, _ = seeded
    rc, out = _run(capsys, "publications", "show", "4242", "--url", store.url)
    assert rc == 1 and "no publication 4242" in out


def test_store_url_from_the_environment(empty_store_factory, tmp_path):
    from brygga.store import migrate

    store = empty_store_factory("sqlite")
    migrate.upgrade(store)
    seed(store)
    env = {**os.environ, "BRYGGA_STORE_URL": store.url}
    r = subprocess.run([sys.executable, "-m", "brygga.cli", "publications", "list"], env=env, capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "anna.operator" in r.stdout and "3 of 3" in r.stdout
