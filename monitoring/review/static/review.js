// The reviewer page: sign in with a token, label one photo at a time with the keyboard (1-9, 0 for
// "not a room / unusable"), undo with u. The API never tells this page what any model answered.
"use strict";

const state = { token: sessionStorage.getItem("reviewToken") || "", labels: [], unusable: "unusable",
                item: null, busy: false, photoUrl: null };
const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const opts = { method: body === undefined ? "GET" : "POST",
                 headers: { "Authorization": "Bearer " + state.token } };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  if (r.status === 401) { signOut("That token was not accepted."); throw new Error("unauthorized"); }
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : await r.blob();
  if (!r.ok) throw Object.assign(new Error(data.error || ("HTTP " + r.status)), { status: r.status });
  return data;
}

function signOut(message) {
  sessionStorage.removeItem("reviewToken");
  state.token = "";
  $("review").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

function showProgress(p) {
  $("progress").textContent = `left ${p.pending} · in review ${p.claimed} · done ${p.done} · yours ${p.mine}`;
}

function renderLabels() {
  const box = $("labels");
  box.replaceChildren();
  const add = (label, key, text) => {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.label = label;
    if (key) { const k = document.createElement("kbd"); k.textContent = key; b.append(k); }
    b.append(text);
    b.addEventListener("click", () => decide(label));
    box.append(b);
  };
  state.labels.forEach((l, i) => add(l, i < 9 ? String(i + 1) : "", l.replace(/_/g, " ")));
  add(state.unusable, "0", "not a room / unusable");
}

async function show(item, progress) {
  state.item = item;
  if (progress) showProgress(progress);
  if (state.photoUrl) { URL.revokeObjectURL(state.photoUrl); state.photoUrl = null; }
  if (!item) {
    $("photo-box").hidden = true;
    $("status").textContent = "Nothing left to review. Thank you!";
    return;
  }
  let blob;
  try {
    blob = await api(item.photo);
  } catch (e) {
    // The last photo must not stay on screen under this item: a verdict on it would be given to this one.
    $("photo-box").hidden = true;
    $("photo").removeAttribute("src");
    $("photo").dataset.item = item.item_id;
    throw e;
  }
  state.photoUrl = URL.createObjectURL(blob);
  $("photo").src = state.photoUrl;
  $("photo").dataset.item = item.item_id;
  $("photo-box").hidden = false;
  $("status").textContent = "";
}

async function next() {
  const r = await api("api/claim", {});
  await show(r.item, r.progress);
}

async function run(fn) {
  if (state.busy) return;  // one action at a time: a double key press must not label twice
  state.busy = true;
  $("error").textContent = "";
  try { await fn(); }
  catch (e) { if (e.message !== "unauthorized") $("error").textContent = e.message; }
  finally { state.busy = false; }
}

function decide(label) {
  run(async () => {
    if (!state.item) return;
    const it = state.item;
    let r;
    try {
      r = await api("api/verdict", { item_id: it.item_id, claim_id: it.claim_id, label });
    } catch (e) {
      // The item is no longer this reviewer's (the lease lapsed and someone took it) or is gone: every
      // key would be refused the same way, so say why and show the next one.
      if (e.status === 409 || e.status === 404) await next();
      throw e;
    }
    showProgress(r.progress);
    await next();
  });
}

function undo() {
  run(async () => {
    const r = await api("api/undo", {});
    await show(r.item, r.progress);
  });
}

async function signIn() {
  const me = await api("api/me");
  state.labels = me.labels;
  state.unusable = me.unusable;
  $("who").textContent = "signed in as " + me.reviewer;
  renderLabels();
  $("login").hidden = true;
  $("review").hidden = false;
  $("login-error").textContent = "";
  await next();
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("token").value.trim();
  sessionStorage.setItem("reviewToken", state.token);
  run(signIn);
});

$("undo").addEventListener("click", undo);

document.addEventListener("keydown", (ev) => {
  if ($("review").hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "u") { undo(); return; }
  if (ev.key === "0") { decide(state.unusable); return; }
  const n = Number(ev.key);
  if (Number.isInteger(n) && n >= 1 && n <= 9 && n <= state.labels.length) decide(state.labels[n - 1]);
});

if (state.token) run(signIn);
