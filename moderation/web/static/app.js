// trackguard review: segment playback, keyboard shortcuts, lease renewal. Plain JS, no dependencies.
"use strict";

(function () {
  const player = document.getElementById("player");
  let stopAt = null;

  function playSegment(el) {
    const start = parseFloat(el.dataset.start), end = parseFloat(el.dataset.end);
    if (!player || Number.isNaN(start)) return;
    document.querySelectorAll(".segment.active, .region.active").forEach((x) => x.classList.remove("active"));
    document.querySelectorAll(`[data-start="${el.dataset.start}"][data-end="${el.dataset.end}"]`)
      .forEach((x) => x.classList.add("active"));
    stopAt = Number.isNaN(end) ? null : end;
    watchStop();
    player.currentTime = start;
    const played = player.play();
    if (played && played.catch) played.catch(() => {});  // autoplay refusals are not errors
  }

  // timeupdate fires only every ~250 ms; poll faster while a segment plays so it stops at its end.
  let watcher = null;
  function watchStop() {
    if (watcher !== null) clearInterval(watcher);
    watcher = setInterval(() => {
      if (stopAt === null) {
        clearInterval(watcher);
        watcher = null;
      } else if (player.currentTime >= stopAt) {
        player.pause();
        stopAt = null;
      }
    }, 15);
  }

  function wireSegments() {
    document.querySelectorAll("button.segment, .region").forEach((el) => {
      el.addEventListener("click", () => playSegment(el));
      el.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && el.classList.contains("region")) playSegment(el);
      });
    });
    if (!player) return;
    player.addEventListener("timeupdate", () => {
      if (stopAt !== null && player.currentTime >= stopAt) {
        player.pause();
        stopAt = null;
      }
      movePlayhead();
    });
    player.addEventListener("pause", () => { stopAt = null; });  // a manual pause ends the segment
    player.addEventListener("seeking", () => { if (stopAt !== null && player.currentTime > stopAt) stopAt = null; });
  }

  function movePlayhead() {
    const head = document.getElementById("playhead");
    const duration = player.duration || parseFloat(document.getElementById("case")?.dataset.duration || "");
    if (!head || !duration) return;
    head.style.display = "block";
    head.style.left = `${Math.min(100, (player.currentTime / duration) * 100)}%`;
  }

  function typing(target) {
    const tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  const KEYS = { u: "uphold", d: "dismiss", a: "label_ai", c: "credit", e: "escalate" };

  function wireShortcuts() {
    const form = document.getElementById("decide");
    document.addEventListener("keydown", (ev) => {
      if (form && ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        if (form.reportValidity()) form.requestSubmit();
        return;
      }
      if (typing(ev.target) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const onControl = ["BUTTON", "A", "AUDIO"].includes((ev.target && ev.target.tagName) || "");
      if (ev.key === " " && player && !onControl) {
        ev.preventDefault();
        if (player.paused) player.play().catch(() => {}); else player.pause();
        return;
      }
      const action = KEYS[ev.key.toLowerCase()];
      if (form && action) {
        ev.preventDefault();
        document.getElementById("action").value = action;
        document.getElementById("reason").focus();
      }
    });
  }

  // Keep the lease alive while the page is open: renew at the middle of what is left.
  function wireRenewal() {
    const root = document.getElementById("case");
    if (!root || !root.dataset.leaseUntil || !document.getElementById("decide")) return;
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const schedule = (until) => {
      const left = new Date(until).getTime() - Date.now();
      setTimeout(renew, Math.max(5000, left / 2));
    };
    const renew = () => {
      fetch(`/cases/${root.dataset.caseId}/renew`, { method: "POST", headers: { "X-CSRF-Token": token },
        credentials: "same-origin" })
        .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
        .then(({ ok, body }) => {
          const shown = document.getElementById("lease-until");
          if (ok) {
            if (shown) shown.textContent = new Date(body.lease_until).toISOString().replace("T", " ").slice(0, 19) + " UTC";
            schedule(body.lease_until);
          } else if (shown) {
            shown.textContent = "expired — " + (body.message || "claim the case again");
          }
        })
        .catch(() => setTimeout(renew, 15000));
    };
    schedule(root.dataset.leaseUntil);
  }

  document.addEventListener("DOMContentLoaded", () => {
    wireSegments();
    wireShortcuts();
    wireRenewal();
  });
})();
