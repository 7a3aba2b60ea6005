"""The /v1 JSON API: bearer tokens, claims and decisions, distributor scoping, appeals, errors, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.web_helpers import Seed, World, build_world, login, seed_world


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_world(tmp_path_factory.mktemp("web-seed"))


@pytest.fixture()
def world(tmp_path: Path, seed: Seed) -> World:
    return build_world(tmp_path, seed)


def bearer(world: World, username: str) -> TestClient:
    client = world.client()
    client.headers["Authorization"] = f"Bearer {world.service.issue_api_token(username, actor='ada')}"
    return client


def test_bearer_token_flow(world: World) -> None:
    rita = bearer(world, "rita")
    queues = {q["queue"]: q for q in rita.get("/v1/queues").json()}
    assert queues["spam"]["open"] == 2 and queues["appeals"]["open"] == 0
    cases = rita.get("/v1/queues/spam/cases").json()
    assert {c["upload_id"] for c in cases} == {"up-gone", "up-b"}
    anonymous = world.client()
    assert anonymous.get("/v1/queues").status_code == 401
    anonymous.headers["Authorization"] = "Bearer not-a-token"
    r = anonymous.get("/v1/queues")
    assert r.status_code == 401 and r.json() == {"error": "unauthenticated", "message": r.json()["message"]}
    anonymous.headers["Authorization"] = "Basic cml0YTpwdw=="
    assert anonymous.get("/v1/queues").status_code == 401


def test_claim_decide_release_and_errors(world: World) -> None:
    rita = bearer(world, "rita")
    claim = rita.post("/v1/queues/spam/claim").json()
    assert claim["reviewer"] == "rita" and claim["lease_token"]
    case_id = claim["case_id"]
    detail = rita.get(f"/v1/cases/{case_id}").json()
    assert detail["summary"]["claimed_by"] == "rita" and detail["verdict"]["queue"] == "spam"
    r = rita.post(f"/v1/cases/{case_id}/decision", json={"lease_token": "wrong", "action": "uphold", "reason": "x"})
    assert r.status_code == 409 and r.json()["error"] == "stale_lease"
    r = rita.post(f"/v1/cases/{case_id}/decision", json={"lease_token": claim["lease_token"], "action": "uphold",
                                                         "reason": "  "})
    assert r.status_code == 400 and r.json()["error"] == "invalid_decision"
    r = rita.post(f"/v1/cases/{case_id}/decision", json={"lease_token": claim["lease_token"], "action": "nope",
                                                         "reason": "x"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = rita.post(f"/v1/cases/{case_id}/decision", json={"lease_token": claim["lease_token"], "action": "uphold",
                                                         "reason": "spam farm"})
    assert r.status_code == 201 and r.json()["action"] == "uphold" and r.json()["reviewer"] == "rita"
    second = rita.post("/v1/queues/spam/claim").json()
    r = rita.post(f"/v1/cases/{second['case_id']}/release", json={"lease_token": second["lease_token"]})
    assert r.status_code == 204
    r = rita.post(f"/v1/cases/{second['case_id']}/release", json={"lease_token": second["lease_token"]})
    assert r.status_code == 409
    assert rita.post("/v1/queues/profile-mismatch/claim").status_code == 204
    assert rita.get("/v1/cases/99999").json()["error"] == "not_found"
    assert rita.get("/v1/queues/spam/cases?status=decided").json()[0]["resolution"] == "uphold"
    assert rita.get("/v1/queues/spam/cases?status=bogus").status_code == 400
    assert rita.get("/v1/audit/verify").status_code == 403


def test_distributor_sees_only_own_uploads(world: World) -> None:
    dora = bearer(world, "dora")  # dist-a
    own = dora.get("/v1/uploads/up-imp/verdict")
    assert own.status_code == 200 and own.json()["verdict"]["decision"] == "block"
    assert own.json()["verdict"]["voice_similarity"] is None  # biometric score withheld from distributors
    other = dora.get("/v1/uploads/up-b/verdict")  # dist-b's upload
    assert other.status_code == 403 and other.json()["error"] == "not_allowed"
    assert dora.get("/v1/uploads/no-such-upload/verdict").status_code in (403, 404)
    assert dora.get("/v1/queues").status_code == 403
    assert bearer(world, "dan").get("/v1/uploads/up-b/verdict").status_code == 200


def test_appeal_then_a_lead_decides(world: World) -> None:
    rita = bearer(world, "rita")
    claim = rita.post("/v1/queues/undisclosed-ai/claim").json()
    rita.post(f"/v1/cases/{claim['case_id']}/decision",
              json={"lease_token": claim["lease_token"], "action": "label_ai", "reason": "clearly synthetic"})
    dora = bearer(world, "dora")
    r = dora.post("/v1/uploads/up-ai/appeals", json={"reason": "the singer is human, stems attached"})
    assert r.status_code == 201 and r.json()["status"] == "open"
    assert dora.post("/v1/uploads/up-ai/appeals", json={"reason": "again"}).status_code in (400, 409)
    assert bearer(world, "dan").post("/v1/uploads/up-ai/appeals", json={"reason": "x"}).status_code == 403
    assert rita.post("/v1/queues/appeals/claim").status_code == 204  # appeals need a lead, not the first reviewer
    lee = bearer(world, "lee")
    got = lee.post("/v1/queues/appeals/claim").json()
    assert got["case_id"] == claim["case_id"]
    r = lee.post(f"/v1/cases/{got['case_id']}/decision",
                 json={"lease_token": got["lease_token"], "action": "dismiss", "reason": "stems show a real singer"})
    assert r.status_code == 201 and r.json()["appeal_id"] is not None
    status = dora.get("/v1/uploads/up-ai/verdict").json()
    assert status["appeal"]["status"] == "overturned" and status["final_decision"]["action"] == "dismiss"
    verify = lee.get("/v1/audit/verify").json()
    assert verify["ok"] is True and verify["entries"] > 0


def test_session_cookie_with_csrf_header(world: World) -> None:
    client = world.client()
    csrf = login(client, "rita")
    assert client.get("/v1/queues").status_code == 200
    assert client.post("/v1/queues/spam/claim").status_code == 403
    r = client.post("/v1/queues/spam/claim", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["reviewer"] == "rita"


def test_openapi_lists_the_v1_paths_only(world: World) -> None:
    doc = world.client().get("/v1/openapi.json").json()
    paths = set(doc["paths"])
    assert {"/v1/queues", "/v1/queues/{queue}/cases", "/v1/queues/{queue}/claim", "/v1/cases/{case_id}",
            "/v1/cases/{case_id}/decision", "/v1/cases/{case_id}/release", "/v1/uploads/{upload_id}/verdict",
            "/v1/uploads/{upload_id}/appeals", "/v1/audit/verify"} == paths
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert world.client().get("/v1/docs").status_code == 404  # Swagger UI would need a CDN
