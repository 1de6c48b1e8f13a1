"""The console (``brygga.console``): its pages and JSON over a seeded store, on SQLite and
PostgreSQL, behind an authentication check. The Airflow login itself is tested in
``tests/plugins/test_airflow_plugin.py``, the actions in ``test_actions.py``."""

import pytest
from fastapi.testclient import TestClient

from brygga import console
from tests.plugins.seed import ATERBUD, PNR_A, PNR_B, UNHANDLED, seed

TOKEN = {"Authorization": "Bearer let-me-in"}
SECRET = "test-secret"


async def _auth(request):
    if request.headers.get("authorization") != TOKEN["Authorization"]:
        raise console.Unauthenticated("Not authenticated", "/auth/login")
    return "anna.operator"


@pytest.fixture
def seeded(store):
    return store, seed(store)


@pytest.fixture
def client(seeded):
    store, _ = seeded
    return TestClient(console.create_app(store, _auth, secret=SECRET))


def _no_full_pnr(text: str) -> None:
    for pnr in (PNR_A, PNR_B, PNR_B.replace("-", ""), PNR_A[:8] + "-" + PNR_A[8:]):
        assert pnr not in text


@pytest.mark.parametrize("path", ["/", "/publications", "/publications/1", "/unhandled-admissions",
                                  "/aterbud-cases", "/archive", "/api/archive", "/api/overview", "/api/publications", "/api/publications/1",
                                  "/api/unhandled-admissions", "/api/aterbud-cases", "/api/openapi.json"])
def test_every_page_needs_a_login(client, path):
    r = client.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = client.get(path, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_browser_without_login_gets_a_login_link(client):
    r = client.get("/publications", headers={"Accept": "text/html"})
    assert r.status_code == 401 and 'href="/auth/login"' in r.text
    assert client.get("/api/publications", headers={"Accept": "text/html"}).json() == {"detail": "Not authenticated"}


def test_forbidden_is_403(seeded):
    store, _ = seeded

    def no(request):
        raise console.Forbidden("viewer may not")

    assert TestClient(console.create_app(store, no, secret=SECRET)).get("/api/overview").status_code == 403


def test_publication_list_and_filters(client, seeded):
    _, ids = seeded
    rows = client.get("/api/publications", headers=TOKEN).json()["rows"]
    assert [r["id"] for r in rows] == [ids["other"], ids["dry"], ids["real"]]  # newest first
    real = rows[-1]
    assert real["triggered_by"] == "anna.operator" and real["dry_run"] is False and real["status"] == "partial"
    assert real["run_id"] == "manual__2027-04-01" and real["selection"] == {"codes": [], "places": 30}

    def ids_for(**params):
        return [r["id"] for r in client.get("/api/publications", params=params, headers=TOKEN).json()["rows"]]

    assert ids_for(round="HT2027") == [ids["dry"], ids["real"]]
    assert ids_for(dry_run="true") == [ids["dry"]]
    assert ids_for(dry_run="false", round="HT2027") == [ids["real"]]
    assert ids_for(kind="programme-internal") == [ids["dry"]]
    assert ids_for(status="partial") == [ids["real"]]
    page = client.get("/api/publications", params={"limit": 1, "offset": 1}, headers=TOKEN).json()
    assert page["total"] == 3 and [r["id"] for r in page["rows"]] == [ids["dry"]]

    html = client.get("/publications", params={"round": "HT2027"}, headers=TOKEN).text
    assert "anna.operator" in html and "bo.operator" in html and "provkörning" in html
    assert f'href="/publications/{ids["real"]}"' in html


def test_publication_detail_shows_what_was_sent_and_nyas_answer(client, seeded):
    _, ids = seeded
    d = client.get(f"/api/publications/{ids['real']}", headers=TOKEN).json()
    assert d["publication"]["triggered_by"] == "anna.operator"
    assert d["counts"]["action"] == {"new": 2, "withdrawn": 1, "invalid": 1, "unchanged": 1}
    assert d["counts"]["status"] == {"sent": 2, "rejected": 1, "invalid": 1, "done": 1}
    items = {it["offer_id"][:1]: it for it in d["items"]["rows"]}
    assert items["1"]["action"] == "new" and items["1"]["status"] == "sent" and items["1"]["nya_answer"] == "created"
    assert items["1"]["payload"]["utbildningskod"] == "TDA357"  # what was sent
    assert items["1"]["outbox"]["status"] == "sent" and items["1"]["outbox"]["attempts"] == 1
    assert items["2"]["status"] == "rejected" and "already published" in items["2"]["nya_answer"]
    assert items["2"]["outbox"]["status"] == "dead" and "already published" in items["2"]["outbox"]["last_error"]
    assert items["3"]["action"] == "withdrawn" and items["3"]["nya_answer"] == "withdrawn"
    assert items["4"]["action"] == "invalid" and "Studietakt" in items["4"]["nya_answer"]
    assert [a["action"] for a in d["audit"]] == ["publication.start", "publication.finish"]

    rejected = client.get(f"/api/publications/{ids['real']}", params={"status": "rejected"}, headers=TOKEN).json()
    assert [it["offer_id"][:1] for it in rejected["items"]["rows"]] == ["2"]
    withdrawn = client.get(f"/api/publications/{ids['real']}", params={"action": "withdrawn"}, headers=TOKEN).json()
    assert withdrawn["items"]["total"] == 1

    html = client.get(f"/publications/{ids['real']}", headers=TOKEN).text
    assert "anna.operator" in html and "already published" in html and "withdrawn" in html
    assert "Studietakt" in html
    new = html.split('id="diff-new"')[1].split("</table>")[0]  # the plan: the offers sent, field by field
    assert "TDA357 Databaser" in new and "Umeå" in new and "2027-08-30–2027-10-29" in new and ">100<" in new
    _no_full_pnr(html)
    _no_full_pnr(str(d))
    assert client.get("/api/publications/99999", headers=TOKEN).status_code == 404
    assert client.get("/publications/99999", headers=TOKEN).status_code == 404


def test_unhandled_admissions_filters_counts_and_masking(client):
    def get(**params):
        return client.get("/api/unhandled-admissions", params=params, headers=TOKEN).json()

    everything = get()
    assert everything["total"] == len(UNHANDLED)
    assert everything["counts_per_hinder"] == {"studieplan.saknar.paket": 3, "tillfalle.installt": 2}
    assert everything["counts_per_status"] == {"open": 4, "resolved": 1}
    assert everything["rounds"] == ["HT2027", "VT2028"]

    ht_open = get(round="HT2027", status="open")
    assert ht_open["total"] == 3
    assert ht_open["counts_per_hinder"] == {"studieplan.saknar.paket": 2, "tillfalle.installt": 1}
    one = get(round="HT2027", hinder="tillfalle.installt", status="open")
    assert [r["nya_admission_id"] for r in one["rows"]] == ["ADM-2"]
    assert one["counts_per_hinder"] == {"studieplan.saknar.paket": 2, "tillfalle.installt": 1}  # per hinder: all
    assert get(round="VT2028")["total"] == 1 and get(status="resolved")["total"] == 1

    masked = {r["nya_admission_id"]: r for r in everything["rows"]}
    assert masked["ADM-0"]["personnummer"] == "19900101-****"
    assert masked["ADM-2"]["personnummer"] == "20010203-****" and masked["ADM-2"]["reason"].endswith("20010203-****")
    _no_full_pnr(str(everything))

    html = client.get("/unhandled-admissions", params={"round": "HT2027"}, headers=TOKEN).text
    assert "studieplan.saknar.paket" in html and "19900101-****" in html
    _no_full_pnr(html)
    assert get(limit=2)["rows"].__len__() == 2


def test_aterbud_cases_filters_counts_and_masking(client):
    def get(**params):
        return client.get("/api/aterbud-cases", params=params, headers=TOKEN).json()

    everything = get()
    assert everything["total"] == len(ATERBUD)
    assert everything["counts_per_status"] == {"closed": 1, "open": 3}
    assert everything["counts_per_cause"] == {"already_aterbud": 1, "registered": 3}
    ht = get(round="HT2027")
    assert ht["total"] == 3 and ht["counts_per_status"] == {"closed": 1, "open": 2}
    ht_open = get(round="HT2027", status="open")
    assert sorted(r["nya_aterbud_id"] for r in ht_open["rows"]) == ["ATB-0", "ATB-1"]
    assert ht_open["counts_per_cause"] == {"already_aterbud": 1, "registered": 1}
    assert get(status="closed")["total"] == 1

    rows = {r["nya_aterbud_id"]: r for r in everything["rows"]}
    assert rows["ATB-0"]["personnummer"] == "20010203-****" and rows["ATB-0"]["note"] == "student 20010203-**** ringde"
    _no_full_pnr(str(everything))
    html = client.get("/aterbud-cases", params={"status": "open"}, headers=TOKEN).text
    assert "already_aterbud" in html
    _no_full_pnr(html)


def test_overview(client):
    o = client.get("/api/overview", headers=TOKEN).json()
    assert o["publications"] == 3 and o["last_publication"]["round"] == "VT2028"
    assert o["unhandled_admissions"] == {"open": 4, "resolved": 1}
    assert o["aterbud_cases"] == {"closed": 1, "open": 3}
    assert o["outbox"] == {"dead": 1, "sent": 1}
    html = client.get("/", headers=TOKEN).text
    assert "Inloggad som <strong id=\"user\">anna.operator</strong>" in html


def test_html_escapes_what_it_shows(store):
    from brygga.flows import offers

    pid = offers.start(store, round_code="HT2027", kind="ordinary", codes=["<script>x</script>"], dry_run=True,
                       triggered_by="<b>mallory</b>")
    c = TestClient(console.create_app(store, _auth, secret=SECRET))
    for path in ("/publications", f"/publications/{pid}"):
        text = c.get(path, headers=TOKEN).text
        assert "<script>x</script>" not in text and "<b>mallory</b>" not in text
        assert "&lt;b&gt;mallory&lt;/b&gt;" in text


def test_archive_page_shows_receipts_reasons_and_what_is_not_delivered(client, seeded):
    from brygga.flows.archive.delivery import DESTINATION, KIND
    from brygga.store import ops
    from brygga.store.models import ArchivePackage

    store, _ = seeded
    with store.transaction() as s:
        s.add(ArchivePackage(package_id="brygga-kurstillfalle-aaa", subject_kind="kurstillfalle", subject_uid="u-1",
                             content_sha256="0" * 64, status="accepted", archive_id="SE-ARKIV-000007", size=1234))
        ops.outbox_enqueue(s, [{"destination": DESTINATION, "kind": KIND, "idempotency_key": "arkiv:kurstillfalle:u-2",
                                "payload": {"uid": "u-2", "label": "Kurstillfälle SV101 10001"},
                                "correlation": "arkiv:u-2"}])
        m = ops.outbox_due(s, DESTINATION, kind=KIND)[0]
        ops.outbox_mark_failed(s, m, f"Arkivet avvisade paketet: fil.kontrollsumma: ändrad ({PNR_A})", permanent=True)
    r = client.get("/archive", headers=TOKEN)
    assert r.status_code == 200
    assert "SE-ARKIV-000007" in r.text and "arkiverat" in r.text
    assert "Kurstillfälle SV101 10001" in r.text and "fil.kontrollsumma" in r.text and "avvisat" in r.text
    _no_full_pnr(r.text)
    d = client.get("/api/archive", headers=TOKEN, params={"status": "accepted"}).json()
    assert [x["archive_id"] for x in d["rows"]] == ["SE-ARKIV-000007"]
    assert d["not_delivered"][0]["status"] == "dead"


def test_statistics_page_charts_and_csv(client):
    import json
    import re

    page = client.get("/statistics", params={"days": 400 // 2}, headers=TOKEN)
    assert page.status_code == 200
    data = json.loads(re.search(r'<script type="application/json" id="stats-data">(.*?)</script>', page.text,
                                re.S).group(1))
    assert len(data["days"]) == 200 and data["backlog"] and data["flow"]
    labels = {s["label"] for s in data["backlog"]}
    assert any(lbl.startswith("Antagningar: ") for lbl in labels) and any(lbl.startswith("Ärenden: ") for lbl in labels)
    assert '/static/vendor/chart.umd.js' in page.text  # served by Brygga, no CDN
    assert "https://" not in page.text.split("<footer")[0].split("</nav>")[1]
    assert client.get("/static/vendor/chart.umd.js").status_code == 200
    csv = client.get("/statistics.csv", params={"table": "daily", "days": 7}, headers=TOKEN)
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "day,kind,group,opened,resolved,backlog"
    handling = client.get("/statistics.csv", params={"table": "handling"}, headers=TOKEN)
    assert handling.text.splitlines()[0] == "kind,handled,median_hours,p90_hours"
    assert client.get("/statistics.csv", params={"table": "x"}, headers=TOKEN).status_code == 404
    ht = client.get("/statistics", params={"round": "VT2028"}, headers=TOKEN)
    assert ht.status_code == 200 and '<option selected>VT2028</option>' in ht.text
