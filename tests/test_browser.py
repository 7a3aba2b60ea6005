"""The reviewer app in a real headless Chromium (Debian `chromium` + `chromium-driver`, driven by Selenium).

A real uvicorn server on a loopback port serves a real SQLite database filled
with cases whose audio is generated here. Screenshots of every step are kept in
``artifacts/browser/`` (the README's case-page picture comes from this test).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from moderation.cases import CaseStore
from moderation.review import ReviewService, Role
from tests.audio_factory import noise, place, voice_like, write_audio
from trackguard.contracts import Decision, Queue, Segment, Verdict

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (make test installs them)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fill(url: str, audio_dir: Path) -> None:
    sr = 16000
    rng_audio = place(noise(sr, 12.0, amplitude=0.05), voice_like(sr, 4.0), start_s=5.0, sr=sr)
    clone = write_audio(audio_dir / "clone.wav", rng_audio, sr)
    original = write_audio(audio_dir / "original.wav", place(noise(sr, 12.0, amplitude=0.05),
                                                               voice_like(sr, 4.0, seed=1), start_s=2.0, sr=sr), sr)
    store = CaseStore(url)
    uploads = [
        {"upload_id": "up-clone", "audio_uri": f"file://{clone}", "title": "Night Drive (AI mix)",
         "artist_name": "Nova Lane", "distributor_id": "dist-1", "uploader_id": "uploader-9",
         "uploaded_at": "2026-11-01T10:00:00Z"},
        {"upload_id": "up-orig", "audio_uri": f"file://{original}", "title": "Night Drive",
         "artist_name": "Nova Lane", "distributor_id": "dist-2", "uploader_id": "uploader-1",
         "uploaded_at": "2026-10-01T10:00:00Z"},
        {"upload_id": "up-copy", "audio_uri": f"file://{original}", "title": "Night Drive (copy)",
         "artist_name": "Various", "distributor_id": "dist-1", "uploader_id": "uploader-9",
         "uploaded_at": "2026-11-02T10:00:00Z"},
    ]
    store.upsert_uploads(uploads)
    store.upsert_verdicts([
        Verdict("up-clone", Decision.REVIEW, Queue.UNDISCLOSED_AI, 60, ["synthetic_voice"], synthetic_score=0.93,
                synthetic_segments=[Segment(5.0, 7.0, 0.95), Segment(7.0, 9.0, 0.91)],
                model_versions={"detector": "lcnn-test"}),
        Verdict("up-orig", Decision.PASS),
        Verdict("up-copy", Decision.REVIEW, Queue.DUPLICATES, 40, ["duplicate_upload"], duplicate_of="up-orig"),
    ])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import uvicorn

    from moderation.web.app import create_app

    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'review.db'}"
    _fill(url, tmp)
    service = ReviewService(url)
    for name, role in (("rita", Role.REVIEWER), ("lena", Role.LEAD)):
        service.create_user(name, PASSWORD, role)
    service.create_user("dist1", PASSWORD, Role.DISTRIBUTOR, distributor_id="dist-1")
    token = service.issue_api_token("dist1", actor="test")
    app = create_app(service, secret_key="browser-test-key", secure_cookies=False, db_url=url)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield {"base": base, "service": service, "token": token, "url": url}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER or ""), options=opts)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


def _shot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def _sign_in(driver: Any, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    driver.find_element(By.ID, "queues")  # the overview loaded


def _wait(predicate: Any, timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    value = _try(predicate)
    while not value and time.monotonic() < deadline:
        time.sleep(0.1)
        value = _try(predicate)
    return value


def _try(predicate: Any) -> Any:
    """The predicate's value; None when the element it read was replaced meanwhile (the page re-rendered)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return predicate()
    except StaleElementReferenceException:
        return None


def _decide(driver: Any, action: str, reason: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "action")).select_by_value(action)
    driver.find_element(By.ID, "reason").send_keys(reason)
    driver.find_element(By.ID, "decide-submit").click()


def test_reviewer_claims_listens_and_decides(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    base = server["base"]
    _sign_in(browser, base, "rita")
    _shot(browser, "01-queues")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="undisclosed-ai"]')
    row.find_element(By.CSS_SELECTOR, "button.claim-next").click()
    case = browser.find_element(By.CSS_SELECTOR, "main#case")
    assert case.get_attribute("data-upload-id") == "up-clone"
    waveform = browser.find_element(By.ID, "waveform")
    assert _wait(lambda: browser.execute_script("return arguments[0].naturalWidth", waveform) > 0), "no waveform image"
    segments = browser.find_elements(By.CSS_SELECTOR, "button.segment")
    assert [float(s.get_attribute("data-start")) for s in segments] == [5.0, 7.0]
    assert browser.find_elements(By.CSS_SELECTOR, ".region[data-start]"), "flagged regions not drawn over the waveform"

    segments[0].click()
    player = browser.find_element(By.ID, "player")
    playing = _wait(lambda: browser.execute_script(
        "const a = arguments[0]; return !a.paused && a.currentTime >= 5.0 && a.currentTime < 7.5", player))
    _shot(browser, "02-case-page")
    assert playing, "clicking the flagged segment did not play it from its start"
    stopped = _wait(lambda: browser.execute_script("return arguments[0].paused", player), timeout=6)
    assert stopped and browser.execute_script("return arguments[0].currentTime", player) <= 7.6

    _decide(browser, "uphold", "Synthetic vocals throughout the flagged span; not declared.")
    # found afresh each time: recording the decision re-renders the page
    assert _wait(lambda: "decided" in browser.find_element(By.ID, "case-status").text.lower())
    actions = [li.get_attribute("data-action") for li in browser.find_elements(By.CSS_SELECTOR, "ul#history > li")]
    assert "claim" in actions and "decide" in actions
    _shot(browser, "03-decided")


def test_duplicate_case_shows_both_tracks(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, server["base"], "rita")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="duplicates"] button.claim-next').click()
    assert browser.find_element(By.CSS_SELECTOR, "main#case").get_attribute("data-upload-id") == "up-copy"
    assert len(browser.find_elements(By.TAG_NAME, "audio")) >= 2, "the original is not playable side by side"
    assert "up-orig" in browser.page_source
    _shot(browser, "04-duplicate")


def test_reviewer_cannot_open_admin_pages(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, server["base"], "rita")
    assert not browser.find_elements(By.ID, "nav-audit")
    for path in ("/admin/users", "/audit"):
        browser.get(server["base"] + path)
        assert "403" in browser.title or "not allowed" in browser.page_source.lower()
    _shot(browser, "05-forbidden")


def test_appeal_is_decided_by_a_lead(server: dict[str, Any], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    service: ReviewService = server["service"]
    case_id = service.case_id_for_upload("up-clone")
    assert case_id is not None
    if service.list_cases(status="decided") == []:  # run alone: decide it first through the service
        rita = service.authenticate("rita", PASSWORD)
        assert rita is not None
        claim = service.claim_case(rita, case_id)
        from moderation.review import Action

        service.decide(rita, case_id, claim.lease_token, Action.UPHOLD, "clone")
    headers = {"Authorization": f"Bearer {server['token']}"}
    resp = httpx.post(f"{server['base']}/v1/uploads/up-clone/appeals", headers=headers,
                      json={"reason": "The vocals are the artist's own, recorded in 2019."})
    assert resp.status_code in (200, 201), resp.text

    _sign_in(browser, server["base"], "lena")
    assert browser.find_elements(By.ID, "nav-audit")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="appeals"] button.claim-next').click()
    assert browser.find_element(By.CSS_SELECTOR, "main#case").get_attribute("data-upload-id") == "up-clone"
    _shot(browser, "06-appeal")
    _decide(browser, "dismiss", "Appeal accepted: studio stems show a human take.")
    # found afresh each time: recording the decision re-renders the page
    assert _wait(lambda: "decided" in browser.find_element(By.ID, "case-status").text.lower())
    verdict = httpx.get(f"{server['base']}/v1/uploads/up-clone/verdict", headers=headers)
    assert verdict.status_code == 200
    assert "overturned" in verdict.text or "dismiss" in verdict.text

    browser.find_element(By.ID, "nav-audit").click()
    assert "appeal" in browser.page_source and "decide" in browser.page_source
    _shot(browser, "07-audit")
