// The control page: polls /api/state once a second and sends each change as one POST.
// No framework and no build step: the page is small enough to write by hand.
"use strict";

const MAX_UPLOAD = 20 * 1024 * 1024;
const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);

/** A same-origin URL carrying the token (images and links cannot send headers). */
function withToken(path, params = {}) {
  const url = new URL(path, location.href);
  if (token) url.searchParams.set("token", token);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.pathname + url.search;
}

/** GET (no body) or POST (JSON object or a Blob); throws with the server's message. */
let posts = 0; // POSTs sent: a state poll sent before one must not undo what it set

async function api(path, body, headers = {}) {
  if (body !== undefined) posts++;
  const init = { method: body === undefined ? "GET" : "POST", headers: { "X-Panel": "1", ...headers } };
  if (token) init.headers["X-Panel-Token"] = token;
  if (body instanceof Blob) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) throw new Error((data && data.error) || `${res.status} ${res.statusText}`);
  return data;
}

let messageTimer = 0;
function say(text, kind = "ok") {
  const el = $("message");
  el.textContent = text;
  el.className = `show ${kind}`;
  clearTimeout(messageTimer);
  if (kind !== "error") messageTimer = setTimeout(() => { el.className = ""; }, 6000);
}

// -- effects -------------------------------------------------------------------------
let shownEffects = "";
const thumbVersions = {};

function renderEffects(state) {
  const box = $("effects");
  if (state.effects.join("\n") !== shownEffects) {
    shownEffects = state.effects.join("\n");
    box.replaceChildren(...state.effects.map((name) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.effect = name;
      b.title = name;
      const img = document.createElement("img");
      img.alt = "";
      const label = document.createElement("span");
      label.textContent = name.startsWith("mask:") ? name.split("/").pop() : name;
      b.append(img, label);
      b.addEventListener("click", () => pickEffect(name));
      return b;
    }));
    for (const k of Object.keys(thumbVersions)) delete thumbVersions[k];
  }
  for (const b of box.children) {
    const name = b.dataset.effect;
    b.classList.toggle("active", name === state.effect);
    const v = state.thumbs[name];
    if (v !== undefined && thumbVersions[name] !== v) {
      thumbVersions[name] = v;
      b.querySelector("img").src = withToken("/api/thumb", { effect: name, v });
    }
  }
}

async function pickEffect(name) {
  try {
    render(await api("/api/effect", { name }));
  } catch (e) {
    say(e.message, "error");
  }
}

// -- figures -------------------------------------------------------------------------
function renderFigures(f) {
  $("fps").textContent = f.fps.toFixed(1);
  $("p50").textContent = f.latency_p50.toFixed(0);
  $("p95").textContent = f.latency_p95.toFixed(0);
  $("dropped").textContent = f.dropped;
  const stages = Object.entries(f.stages);
  const scale = Math.max(33.3, ...stages.map(([, s]) => s.p95)); // a 30 fps frame, or the slowest
  $("stages").replaceChildren(...stages.map(([name, s]) => {
    const row = document.createElement("div");
    row.className = "stage";
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = `${(100 * s.p50) / scale}%`;
    const tick = document.createElement("div");
    tick.className = "tick";
    tick.style.left = `${(100 * s.p95) / scale}%`;
    track.append(bar, tick);
    const ms = document.createElement("span");
    ms.className = "ms";
    ms.textContent = `${s.p50.toFixed(1)} / ${s.p95.toFixed(1)} ms`;
    row.append(label, track, ms);
    return row;
  }));
}

// -- settings and recording -----------------------------------------------------------
let smoothingBusy = 0;

function renderSettings(state) {
  $("hud").checked = state.hud;
  $("mirror").checked = state.mirror;
  $("occlusion-row").hidden = state.occlusion === null;
  if (state.occlusion !== null) $("occlusion").checked = state.occlusion;
  if (!smoothingBusy && document.activeElement !== $("smoothing")) $("smoothing").value = state.smoothing;
  $("smoothing-value").textContent = Number($("smoothing").value).toFixed(2);
}

async function setting(key, value) {
  try {
    render(await api("/api/settings", { [key]: value }));
  } catch (e) {
    say(e.message, "error");
  }
}

function renderRecording(state) {
  const rec = state.recording;
  const button = $("record");
  button.classList.toggle("recording", !!rec);
  if (rec) {
    const s = Math.floor(rec.seconds);
    button.textContent = `Stop ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    $("rec-info").textContent = rec.path;
  } else {
    button.textContent = "Record";
    if (state.last_recording) {
      const a = document.createElement("a");
      a.href = withToken("/api/recording.mp4");
      a.download = "";
      a.textContent = `download ${state.last_recording.split("/").pop()}`;
      $("rec-info").replaceChildren(a);
    }
  }
}

// -- source face ------------------------------------------------------------------------
/** Send a source photo: for every face, or (``track``) for one face's card. */
async function upload(file, track = null) {
  if (!file) return;
  if (file.size > MAX_UPLOAD) {
    say(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB: the limit is 20 MB; use a smaller photo`, "error");
    return;
  }
  say(`looking for a face in ${file.name}…`, "busy");
  $("drop").classList.add("busy");
  try {
    const path = track === null ? "/api/source-face" : withToken("/api/source-face", { track });
    const state = await api(path, file, {
      "Content-Type": file.type || "application/octet-stream",
      "X-File-Name": encodeURIComponent(file.name),
    });
    if (track === null) {
      const preview = $("face-preview");
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
    }
    render(state);
    say(state.message, "ok");
  } catch (e) {
    say(e.message, "error");
  } finally {
    $("drop").classList.remove("busy");
    $("face-file").value = "";
  }
}

let shownFaces = "";

/** A card per face in view: its number (the track id), a picture, its source, a drop
 *  zone for its own source and a button back to its live self. */
function renderFaces(state) {
  const key = state.faces.map((f) => `${f.track}:${f.source_face}`).join(",");
  if (key === shownFaces) return;
  shownFaces = key;
  $("faces").replaceChildren(...state.faces.map((f) => {
    const card = document.createElement("label");
    card.className = "face";
    card.dataset.track = f.track;
    const img = document.createElement("img");
    img.alt = `face ${f.track}`;
    img.src = withToken("/api/face.jpg", { track: f.track, t: Date.now() });
    const name = document.createElement("span");
    name.textContent = `#${f.track}: ${f.source_face || "live"}`;
    const input = document.createElement("input");
    input.type = "file";
    input.accept = "image/*";
    input.addEventListener("change", () => upload(input.files[0], f.track));
    const live = document.createElement("button");
    live.type = "button";
    live.textContent = "Live";
    live.disabled = !f.source_face;
    live.addEventListener("click", async (e) => {
      e.preventDefault();
      try {
        const state = await api("/api/live-face", { track: f.track });
        render(state);
        say(state.message, "ok");
      } catch (err) {
        say(err.message, "error");
      }
    });
    card.addEventListener("dragover", (e) => { e.preventDefault(); card.classList.add("over"); });
    card.addEventListener("dragleave", () => card.classList.remove("over"));
    card.addEventListener("drop", (e) => {
      e.preventDefault();
      card.classList.remove("over");
      upload(e.dataTransfer.files[0], f.track);
    });
    card.append(img, name, input, live);
    return card;
  }));
}

// -- the whole state ------------------------------------------------------------------
function render(state) {
  $("source").textContent = state.source;
  $("status").textContent = state.status;
  document.body.dataset.effect = state.effect;
  renderEffects(state);
  renderFigures(state.figures);
  renderSettings(state);
  renderRecording(state);
  renderFaces(state);
}

let offline = false;
async function refresh() {
  try {
    const before = posts;
    const state = await api("/api/state");
    if (posts === before) render(state);
    if (offline) {
      offline = false;
      $("live").src = withToken("/stream.mjpg", { t: Date.now() });
      say("connected again", "ok");
    }
  } catch (e) {
    if (!offline) say("the run has ended or the panel is unreachable", "error");
    offline = true;
  }
}

function start() {
  $("live").src = withToken("/stream.mjpg");
  $("snapshot").href = withToken("/api/snapshot.png");
  $("record").addEventListener("click", async () => {
    try {
      const state = await api("/api/record", { on: !$("record").classList.contains("recording") });
      render(state);
      say(state.message, "ok");
    } catch (e) {
      say(e.message, "error");
    }
  });
  for (const key of ["hud", "mirror", "occlusion"]) {
    $(key).addEventListener("change", () => setting(key, $(key).checked));
  }
  $("smoothing").addEventListener("input", () => {
    $("smoothing-value").textContent = Number($("smoothing").value).toFixed(2);
    clearTimeout(smoothingBusy);
    smoothingBusy = setTimeout(() => { smoothingBusy = 0; setting("smoothing", Number($("smoothing").value)); }, 150);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload(e.dataTransfer.files[0]);
  });
  $("face-file").addEventListener("change", () => upload($("face-file").files[0]));
  refresh();
  setInterval(refresh, 1000);
}

start();
