// The live rollout page: sign in with an operator token (kept for this tab only), then fetch the
// rendered report every few seconds and swap it in place. Read-only: it only ever GETs.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("rolloutToken") || "", etag: null, refreshS: 5, timer: null,
                lastOk: null };

function get(path, extra) {
  return fetch(path, { headers: { "Authorization": "Bearer " + state.token, ...(extra || {}) }, cache: "no-store" });
}

function signOut(message) {
  sessionStorage.removeItem("rolloutToken");
  state.token = "";
  state.etag = null;
  clearTimeout(state.timer);
  $("report").replaceChildren();
  $("bar").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  document.title = "roomsight rollout";
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function showChecked(problem) {
  $("problem").textContent = problem || "";
  $("bar").classList.toggle("bar--stale", Boolean(problem));
  if (state.lastOk) $("updated").textContent = "checked " + clock(state.lastOk);
}

function swapIn(html) {
  // Replace the report in place: no reload, and the reader keeps their scroll position.
  const y = window.scrollY;
  $("report").innerHTML = html;
  window.scrollTo(0, y);
  const article = $("report").querySelector("article");
  const verdict = article?.querySelector(".verdict__badge")?.textContent || "";
  document.title = `${verdict} · rollout ${(article?.dataset.rollout || "").slice(0, 8)} · roomsight`;
}

async function refresh() {
  let problem = "";
  try {
    const r = await get("api/report", state.etag ? { "If-None-Match": state.etag } : {});
    if (r.status === 401) { signOut("That token was not accepted."); return; }
    state.refreshS = Number(r.headers.get("X-Refresh-S")) || state.refreshS;
    if (r.ok || r.status === 304) {
      if (r.status === 200) {
        state.etag = r.headers.get("ETag");
        swapIn(await r.text());
      }
      $("who").textContent = "signed in as " + decodeURIComponent(r.headers.get("X-Operator") || "?");
      problem = r.headers.get("X-Report-Stale") || "";
      $("login").hidden = true;
      $("bar").hidden = false;
      state.lastOk = new Date();
    } else {
      const body = await r.json().catch(() => ({}));
      problem = body.error || ("HTTP " + r.status);
    }
  } catch (e) {
    problem = "cannot reach the control plane";
  }
  if (state.token) {
    showChecked(problem && state.lastOk ? problem + "; showing the last report" : problem);
    if (problem && !state.lastOk) $("login-error").textContent = problem;
    state.timer = setTimeout(refresh, state.refreshS * 1000);
  }
}

async function download() {
  const r = await get("api/report/file");
  if (!r.ok) { showChecked("could not save the report (HTTP " + r.status + ")"); return; }
  const name = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "")?.[1] || "rollout-report.html";
  const url = URL.createObjectURL(await r.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("rolloutToken", state.token);
  $("login-error").textContent = "";
  clearTimeout(state.timer);
  refresh();
});
$("signout").addEventListener("click", () => signOut(""));
$("download").addEventListener("click", download);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.token) { clearTimeout(state.timer); refresh(); }
});

if (state.token) refresh();
