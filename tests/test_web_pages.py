"""Reviewer pages through the forms: overview, claim, case page, decide, stale leases, audio, waveform, admin."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from tests.web_helpers import DURATION_S, LEASE_RE, Seed, World, build_world, csrf_of, login, seed_world


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    return seed_world(tmp_path_factory.mktemp("web-seed"))


@pytest.fixture()
def world(tmp_path: Path, seed: Seed) -> World:
    return build_world(tmp_path, seed)


def signed_in(world: World, username: str) -> tuple[TestClient, str]:
    client = world.client()
    return client, login(client, username)


def claim_from(client: TestClient, csrf: str, queue: str) -> int:
    r = client.post(f"/queues/{queue}/claim", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.headers["location"].startswith("/cases/"), r.headers.get("location")
    return int(r.headers["location"].rsplit("/", 1)[1])


def lease_on(page: str) -> str:
    match = LEASE_RE.search(page)
    assert match, "no decision form on the page"
    return match.group(1)


def test_overview_lists_every_queue_with_a_claim_button(world: World) -> None:
    client, _ = signed_in(world, "rita")
    page = client.get("/").text
    assert '<table id="queues"' in page
    for queue in ("impersonation", "undisclosed-ai", "duplicates", "spam", "appeals"):
        row = re.search(rf'<tr data-queue="{queue}".*?</tr>', page, re.S)
        assert row and 'class="claim-next' in row.group(0), queue
    spam = re.search(r'<tr data-queue="spam".*?</tr>', page, re.S)
    assert spam and '<td class="num open">2</td>' in spam.group(0)


def test_queue_page_lists_open_cases(world: World) -> None:
    client, _ = signed_in(world, "rita")
    page = client.get("/queues/spam").text
    assert "up-gone" in page and "up-b" in page and "up-imp" not in page


def test_claim_then_decide_through_the_forms(world: World) -> None:
    client, csrf = signed_in(world, "rita")
    case_id = claim_from(client, csrf, "undisclosed-ai")
    page = client.get(f"/cases/{case_id}").text
    assert f'data-case-id="{case_id}"' in page and 'data-upload-id="up-ai"' in page
    assert '<form id="decide"' in page and 'id="decide-submit"' in page
    for value in ("uphold", "dismiss", "label_ai", "credit", "escalate"):
        assert f'<option value="{value}"' in page
    r = client.post(f"/cases/{case_id}/decide", data={"csrf_token": csrf, "lease_token": lease_on(page),
                                                      "action": "label_ai", "reason": "vocoder artefacts"})
    assert r.status_code == 303
    page = client.get(f"/cases/{case_id}").text
    assert "Decision recorded" in page and 'class="flash' in page
    status = re.search(r'id="case-status"[^>]*>([^<]*)<', page)
    assert status and "decided" in status.group(1)
    assert '<form id="decide"' not in page
    assert re.search(r'<ul id="history">.*data-action="claim".*data-action="decide"', page, re.S)
    assert [c.id for c in world.service.list_cases("undisclosed-ai")] == []


def test_empty_queue_flashes(world: World) -> None:
    client, csrf = signed_in(world, "rita")
    r = client.post("/queues/profile-mismatch/claim", data={"csrf_token": csrf, "back": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = client.get("/").text
    assert re.search(r'class="flash[^"]*"[^>]*>Queue profile-mismatch is empty', page)


def test_stale_lease_gives_a_clear_message(world: World) -> None:
    rita, rita_csrf = signed_in(world, "rita")
    case_id = claim_from(rita, rita_csrf, "undisclosed-ai")
    token = lease_on(rita.get(f"/cases/{case_id}").text)
    world.clock.advance(world.service.lease_s + 1)  # rita's lease runs out; rob takes the case
    rob, rob_csrf = signed_in(world, "rob")
    assert claim_from(rob, rob_csrf, "undisclosed-ai") == case_id
    r = rita.post(f"/cases/{case_id}/decide", data={"csrf_token": rita_csrf, "lease_token": token,
                                                    "action": "dismiss", "reason": "looks fine"})
    assert r.status_code == 303
    page = rita.get(f"/cases/{case_id}").text
    assert "no longer valid" in page and "Nothing was recorded" in page
    assert "Claimed by <strong>rob</strong>" in page and '<form id="decide"' not in page
    assert world.service.list_cases("undisclosed-ai")[0].claimed_by == "rob"


def test_release_and_claim_by_id(world: World) -> None:
    client, csrf = signed_in(world, "rita")
    case_id = world.case_id("up-b")
    r = client.post(f"/cases/{case_id}/claim", data={"csrf_token": csrf})
    assert r.status_code == 303
    token = lease_on(client.get(f"/cases/{case_id}").text)
    client.post(f"/cases/{case_id}/release", data={"csrf_token": csrf, "lease_token": token})
    page = client.get(f"/cases/{case_id}").text
    assert "Released case" in page and 'id="claim"' in page and '<form id="decide"' not in page


def test_renew_keeps_the_lease(world: World) -> None:
    client, csrf = signed_in(world, "rita")
    case_id = claim_from(client, csrf, "spam")
    world.clock.advance(world.service.lease_s - 10)
    r = client.post(f"/cases/{case_id}/renew", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and "lease_until" in r.json()
    world.clock.advance(60)
    assert world.service.list_cases("spam")[0].claimed_by == "rita"


def test_case_page_shows_the_evidence(world: World) -> None:
    client, _ = signed_in(world, "lee")
    case_id = world.case_id("up-imp")
    page = client.get(f"/cases/{case_id}").text
    assert '<audio id="player"' in page and f'src="/cases/{case_id}/audio"' in page
    assert '<img id="waveform"' in page
    assert len(re.findall(r'<button type="button" class="segment" data-start="0.5" data-end="1.5"', page)) == 1
    regions = re.findall(r'class="region" data-start="([\d.]+)" data-end="([\d.]+)".*?style="left: ([\d.]+)%', page,
                         re.S)
    assert [(s, e) for s, e, _ in regions] == [("0.5", "1.5"), ("2.0", "3.0")]
    assert float(regions[0][2]) == pytest.approx(0.5 / DURATION_S * 100, abs=0.01)
    assert "The voice matches an artist enrolled" in page  # plain language for matches_enrolled_artist
    assert "block unlicensed uses" in page and "partner-9" in page
    assert "Song up-imp" in page and "dist-a" in page
    assert 'id="shortcuts"' not in page  # not claimed: no decision form, no shortcuts
    assert "view_biometric" in page  # looking at a voice match is audited, and shown in the history


def test_duplicate_case_links_and_plays_the_original(world: World) -> None:
    client, _ = signed_in(world, "rita")
    page = client.get(f"/cases/{world.case_id('up-dup')}").text
    original = world.case_id("up-ai")
    assert f'href="/cases/{original}"' in page
    assert '<audio id="original-player" controls preload="none" src="/uploads/up-ai/audio">' in page
    audio = client.get("/uploads/up-ai/audio")
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    assert client.get("/uploads/no-such-upload/audio").status_code == 404
    assert "near-duplicate of 1 earlier upload" in page


def test_audio_is_a_wav_with_range_support(world: World) -> None:
    client, _ = signed_in(world, "rita")
    case_id = world.case_id("up-ai")
    r = client.get(f"/cases/{case_id}/audio")
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.headers["accept-ranges"] == "bytes"
    data, sr = sf.read(io.BytesIO(r.content))
    assert len(data) / sr == pytest.approx(DURATION_S, abs=0.01) and r.content[:4] == b"RIFF"
    size = len(r.content)
    part = client.get(f"/cases/{case_id}/audio", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == r.content[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{size}"
    tail = client.get(f"/cases/{case_id}/audio", headers={"Range": f"bytes={size - 10}-"})
    assert tail.status_code == 206 and tail.content == r.content[-10:]
    assert client.get(f"/cases/{case_id}/audio", headers={"Range": f"bytes={size + 5}-"}).status_code == 416


def test_missing_audio_is_a_clear_404(world: World) -> None:
    client, _ = signed_in(world, "rita")
    case_id = world.case_id("up-gone")
    r = client.get(f"/cases/{case_id}/audio")
    assert r.status_code == 404 and "audio_missing" in r.text and "does not exist" in r.text
    assert client.get(f"/cases/{case_id}/waveform.png").status_code == 404
    page = client.get(f"/cases/{case_id}").text
    assert "Audio unavailable (audio_missing)" in page


def test_waveform_is_a_cached_png(world: World) -> None:
    client, _ = signed_in(world, "rita")
    case_id = world.case_id("up-imp")
    r = client.get(f"/cases/{case_id}/waveform.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    cached = list((world.cache_dir / "waveforms").glob("*-v1.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == r.content
    assert client.get(f"/cases/{case_id}/waveform.png").content == r.content


def test_media_requests_reuse_the_page_view_audit(world: World) -> None:
    client, _ = signed_in(world, "rita")
    case_id = world.case_id("up-imp")
    client.get(f"/cases/{case_id}")
    for _ in range(3):
        client.get(f"/cases/{case_id}/audio", headers={"Range": "bytes=0-"})
    client.get(f"/cases/{case_id}/waveform.png")
    views = [e for e in world.service.audit_log(subject_type="case", subject_id=str(case_id))
             if e.action == "view_biometric"]
    assert len(views) == 1


def test_unknown_case_is_a_404_page(world: World) -> None:
    client, _ = signed_in(world, "rita")
    r = client.get("/cases/99999")
    assert r.status_code == 404 and "does not exist" in r.text
    assert client.get("/cases/99999/audio").status_code == 404


def test_audit_page_shows_chain_check(world: World) -> None:
    client, csrf = signed_in(world, "lee")
    claim_from(client, csrf, "spam")
    page = client.get("/audit").text
    assert 'id="chain"' in page and 'data-ok="true"' in page and "Hash chain verified" in page
    assert 'data-action="claim"' in page and 'id="nav-audit"' in page


def test_admin_creates_users_and_issues_tokens(world: World) -> None:
    client, csrf = signed_in(world, "ada")
    assert "dora" in client.get("/admin/users").text
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "nia", "password": "long enough pw",
                                          "role": "reviewer", "distributor_id": ""})
    assert r.status_code == 303
    assert "nia" in [u.username for u in world.service.list_users()]
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "Bad Name", "password": "long enough pw",
                                          "role": "reviewer"})
    assert r.status_code == 400 and "Could not create" in r.text
    r = client.post("/admin/users", data={"csrf_token": csrf, "username": "zed", "password": "long enough pw",
                                          "role": "emperor"})
    assert r.status_code == 400 and "Choose a role" in r.text
    r = client.post("/admin/users/token", data={"csrf_token": csrf, "username": "dora"})
    token = re.search(r'id="issued-token".*?<code>([^<]+)</code>', r.text, re.S)
    assert r.status_code == 200 and token and r.headers["cache-control"] == "no-store"
    dora = world.service.user_for_token(token.group(1))
    assert dora is not None and dora.username == "dora"


def test_artist_page_and_audited_reference_playback(world: World) -> None:
    client, _ = signed_in(world, "lee")
    page = client.get("/artists/art-1").text
    assert "Artist One" in page and "consent office" in page and "block unlicensed uses" in page
    assert 'src="/artists/art-1/reference/0"' in page and 'preload="none"' in page
    r = client.get("/artists/art-1/reference/0", headers={"Range": "bytes=0-"})
    assert r.status_code == 206 and r.content[:4] == b"RIFF"
    client.get("/artists/art-1/reference/0", headers={"Range": "bytes=2000-"})  # seeking: same play
    plays = [e for e in world.service.audit_log(subject_type="artist", subject_id="art-1")
             if e.action == "play_reference"]
    assert len(plays) == 1 and plays[0].actor == "lee"
    assert client.get("/artists/art-1/reference/7").status_code == 404
    assert client.get("/artists/nobody").status_code == 404


def test_pages_render_offline_assets_only(world: World) -> None:
    client, _ = signed_in(world, "lee")
    page = client.get(f"/cases/{world.case_id('up-imp')}").text
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.css").status_code == 200


def test_csrf_token_is_per_session(world: World) -> None:
    _, one = signed_in(world, "rita")
    other, two = signed_in(world, "rob")
    assert one != two
    r = other.post("/queues/spam/claim", data={"csrf_token": one})
    assert r.status_code == 403 and csrf_of(other.get("/").text) == two


def test_distributor_text_is_escaped(world: World) -> None:
    client, _ = signed_in(world, "rita")
    page = client.get(f"/cases/{world.case_id('up-b')}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
