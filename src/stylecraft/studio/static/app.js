// stylecraft studio: the page. Plain JavaScript, no build step. Talks to the JSON API (/docs) and listens to
// /api/events (server-sent events) for job changes. User-supplied text is only ever set as textContent.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = {
  info: null,
  jobs: new Map(),      // id -> job, as the API returns it
  content: null,        // {id, name, url, loading}
  styles: [],           // [{id, name, url, loading}]
  focus: null,          // id of the job shown in the live panel
  connected: false,
  liveKey: "",
};

// ---- helpers ---------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, {credentials: "same-origin", ...options});
  } catch (error) {
    throw new Error("The studio cannot be reached. Is `stylecraft serve` still running?");
  }
  if (response.status === 204) return null;
  let body = null;
  try { body = await response.json(); } catch (error) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || `The server answered ${response.status} ${response.statusText}`);
  }
  return body;
}

let toastTimer = null;
function toast(message, bad = true) {
  $("#toast-text").textContent = message;
  $("#toast").classList.toggle("bad", bad);
  $("#toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, bad ? 8000 : 5000);
}

function hideToast() { $("#toast").hidden = true; }

function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 60) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${String(Math.round(value % 60)).padStart(2, "0")} s`;
}

function when(timestamp) {
  const date = new Date(timestamp * 1000);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})
    : date.toLocaleDateString([], {month: "short", day: "numeric"});
}

function strengthFromSlider(value) { return Number((10 ** Number(value)).toPrecision(2)); }

function names(job) {
  if (job.options.method === "model") return `${job.content.name} · ${modelLabel(job.options.model)}`;
  return `${job.content.name} × ${job.styles.map((s) => s.name).join(", ")}`;
}

function summary(job) {
  const o = job.options;
  const parts = [`${o.size} px`];
  if (o.method === "model") parts.push("real-time model");
  else parts.push(`${o.iterations} iterations`, `strength ${o.style_weight}`);
  if (o.preserve_color) parts.push("photo colours");
  return parts.join(" · ");
}

// The result's quality numbers (docs/quality.md): key, label, what it means, decimals.
const QUALITY = [
  ["content_distance", "content", "Content distance: 0 is the photo's content exactly (VGG-19 relu4_2)", 3],
  ["style_distance", "style", "Style distance: 0 is the painting's textures exactly (Gram matrices)", 3],
  ["colour_distance", "colour", "Colour distance: 0 is the painting's palette, 1 no closer than the photo", 2],
  ["structure_kept", "structure", "Structure kept: SSIM with the photo at 128 px, 1 is the photo's structure", 2],
];

function qualityText(job) {
  return job.quality ? QUALITY.map(([k, label, , digits]) => `${label} ${job.quality[k].toFixed(digits)}`).join(" · ") : "";
}

function stateText(job) {
  switch (job.state) {
    case "queued": return job.queue_position ? `Waiting · number ${job.queue_position} in the queue` : "Waiting";
    case "running": return job.iterations ? `${job.content.kind === "video" ? "Frame" : "Iteration"} ${job.iteration} of ${job.iterations}` : "Starting…";
    case "done": return `Finished in ${seconds(job.elapsed)}`;
    case "failed": return "Failed";
    case "cancelled": return "Cancelled";
    case "interrupted": return "Interrupted: the server stopped during this job";
    default: return job.state;
  }
}

// ---- the form --------------------------------------------------------------------------------------------

function method() { return document.querySelector("input[name=method]:checked").value; }

// ---- the built-in styles: a painting, and the photo painted in it in one pass, per style ------------------------

function builtins() { return state.info ? state.info.models.filter((m) => m.builtin) : []; }

function modelLabel(name) {
  const style = builtins().find((m) => m.name === name);
  return style ? style.title : name.replace(/\.pt$/, "").replace(/\.onnx$/, " (ONNX)");
}

function chosenStyle() {
  return method() === "model" ? builtins().find((m) => m.name === $("#model").value) || null : null;
}

function chooseStyle(name) {
  document.querySelector("input[name=method][value=model]").checked = true;
  $("#model").value = name;
  updateMethod();
}

let stylesKey = null;  // the photo whose previews the row shows ("" for none)
function renderStyles() {
  const styles = builtins();
  const content = state.content && !state.content.loading ? state.content : null;
  $("#builtin").hidden = !styles.length;
  if (!styles.length || stylesKey === (content ? content.id : "")) return;
  stylesKey = content ? content.id : "";
  $("#builtin-hint").textContent = content ? "Your photo in each built-in style, painted in one pass: pick one."
    : "Built-in styles: add a photo to see it painted in each.";
  $("#style-row").replaceChildren(...styles.map((style) => {
    const credit = [style.artist, style.year].filter(Boolean).join(", ");
    return el("button", {type: "button", class: "style-card", "data-style": style.name, "aria-pressed": "false",
      title: credit ? `${style.title} (${credit})` : style.title, onclick: () => chooseStyle(style.name)},
    el("img", {class: "painting", src: `/api/styles/${encodeURIComponent(style.name)}/painting`,
      alt: style.artist ? `${style.title} by ${style.artist}` : style.title}),
    content ? stylePreview(content, style) : null,
    el("span", {class: "caption"}, el("b", {text: style.title}), credit ? el("small", {text: credit}) : null));
  }));
  markChosen();
}

function stylePreview(content, style) {
  const box = el("span", {class: "preview loading"});
  box.append(el("img", {src: `/api/uploads/${content.id}/styles/${encodeURIComponent(style.name)}`,
    alt: `Your photo in the style of ${style.title}`,
    onload: () => { box.className = "preview ready"; },
    onerror: () => { box.className = "preview failed"; box.title = "No preview"; }}));
  return box;
}

function markChosen() {
  const chosen = chosenStyle();
  for (const card of document.querySelectorAll(".style-card")) {
    card.setAttribute("aria-pressed", String(Boolean(chosen) && card.dataset.style === chosen.name));
  }
}

function renderThumbs(kind) {
  const box = $(kind === "content" ? "#content-thumbs" : "#style-thumbs");
  const entries = kind === "content" ? (state.content ? [state.content] : []) : state.styles;
  box.replaceChildren(...entries.map((entry) => el("div", {class: `thumb${entry.loading ? " loading" : ""}`, title: entry.name},
    entry.url ? el("img", {src: entry.url, alt: entry.name}) : el("div", {class: "art"}),
    el("span", {class: "name", text: entry.name}),
    el("button", {type: "button", class: "remove", "aria-label": `Remove ${entry.name}`, onclick: () => {
      if (kind === "content") state.content = null;
      else state.styles = state.styles.filter((s) => s !== entry);
      renderThumbs(kind);
      updateStart();
    }}, "×"))));
  if (kind === "content") renderStyles();
}

async function addFiles(kind, files) {
  const limits = state.info.limits;
  for (const file of files) {
    if (kind === "styles" && state.styles.length >= limits.max_styles) {
      toast(`At most ${limits.max_styles} style pictures.`);
      break;
    }
    const video = file.type.startsWith("video/");
    const largest = video ? limits.max_video_bytes : limits.max_upload_bytes;
    if (file.size > largest) {
      toast(`${file.name}: larger than the limit of ${Math.round(largest / 1048576)} MB.`);
      continue;
    }
    const entry = {id: null, name: file.name, url: video ? null : URL.createObjectURL(file), loading: true,
                   kind: video ? "video" : "picture"};
    if (kind === "content") state.content = entry; else state.styles.push(entry);
    renderThumbs(kind);
    updateStart();
    try {
      const form = new FormData();
      form.append("file", file, file.name);
      const upload = await api("/api/uploads", {method: "POST", body: form});
      entry.id = upload.id;
      entry.kind = upload.kind;
      if (!entry.url) entry.url = upload.thumbnail;  // a video shows its first frame
      entry.loading = false;
      if ($("#toast").classList.contains("bad")) hideToast();  // the last problem is solved
    } catch (error) {
      if (kind === "content" && state.content === entry) state.content = null;
      state.styles = state.styles.filter((s) => s !== entry);
      toast(error.message);
    }
    renderThumbs(kind);
    updateStart();
  }
}

function setupDrop(zone, kind) {
  const input = $(`#${zone.dataset.input}`);
  input.addEventListener("change", () => { addFiles(kind, [...input.files]); input.value = ""; });
  zone.addEventListener("click", (event) => { if (event.target === zone || event.target.tagName === "P") input.click(); });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const files = [...event.dataTransfer.files].filter((f) => f.type === "" || f.type.startsWith("image/"));
    if (!files.length) { toast("Drop image files (JPEG, PNG, WebP …)."); return; }
    addFiles(kind, kind === "content" ? files.slice(0, 1) : files);
  });
}

function updateMethod() {
  const model = method() === "model";
  $("#style-pane").hidden = model;
  $("#model-pane").hidden = !model;
  $("#iterations-field").hidden = model;
  $("#strength-field").hidden = model;
  updateStart();
}

function updateStart() {
  const button = $("#start");
  const hint = $("#start-hint");
  const uploading = (state.content && state.content.loading) || state.styles.some((s) => s.loading);
  let reason = "";
  if (!state.info) reason = "Connecting to the studio…";
  else if (!state.content) reason = "Add a photo to begin.";
  else if (uploading) reason = "Uploading…";
  else if (state.content.kind === "video" && method() !== "model") reason = "A video is painted with a real-time model here (the optimiser takes minutes a frame).";
  else if (method() === "optimise" && !state.styles.length) reason = "Add at least one style picture.";
  else if (method() === "model" && !$("#model").value) reason = "No real-time model to use yet.";
  button.disabled = Boolean(reason);
  markChosen();
  const chosen = chosenStyle();
  $("#fine").hidden = !chosen;
  $("#fine").disabled = Boolean(reason) || !chosen || state.content.kind === "video";
  if (reason) { hint.textContent = reason; return; }
  const waiting = [...state.jobs.values()].filter((j) => j.state === "queued" || j.state === "running").length;
  hint.textContent = waiting ? `${waiting} job${waiting > 1 ? "s" : ""} ahead in the queue.`
    : `Runs on this machine's ${state.info.device.toUpperCase()}.`;
}

function fillForm(info) {
  const d = info.defaults;
  // Offered sizes: those at which a 3:2 photo fits the studio's pixel limit (the server checks the photo's own).
  $("#sizes").replaceChildren(...[256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192]
    .filter((s) => s * Math.round(s * 2 / 3) <= info.limits.max_pixels)
    .map((s) => el("option", {value: s, label: s === 256 ? "quick" : s === d.size ? "standard" : s === 1024 ? "detailed" : null})));
  $("#size").value = d.size;
  $("#iterations").value = d.iterations;
  $("#iterations").max = info.limits.max_iterations;
  // Presets fill the size and the iterations; the fields stay editable.
  $("#presets").replaceChildren(...Object.entries(info.presets).map(([name, p]) => el("button", {
    type: "button", text: name[0].toUpperCase() + name.slice(1), title: `${p.size} px, ${p.iterations} iterations`,
    onclick: () => { $("#size").value = p.size; $("#iterations").value = p.iterations; },
  })));
  $("#strength").value = Math.log10(d.style_weight);
  $("#strength-value").textContent = d.style_weight;
  $("#preserve-color").checked = d.preserve_color;
  $("#content-limits").textContent = `JPEG, PNG, WebP… up to ${Math.round(info.limits.max_upload_bytes / 1048576)} MB; or a video of up to ${info.limits.max_video_seconds} s`;
  const select = $("#model");
  const group = (label, models) => models.length
    ? el("optgroup", {label}, models.map((m) => el("option", {value: m.name, text: modelLabel(m.name)}))) : null;
  select.replaceChildren(...[group("Built-in styles", builtins()), group("Your models", info.models.filter((m) => !m.builtin))]
    .filter(Boolean));
  $("#model-hint").textContent = info.models.length ? "A trained network paints in one pass: seconds, not minutes."
    : `No models yet. Train one with \`stylecraft train\` and put the .pt file in the studio's models folder (\`stylecraft serve\` prints where it is).`;
  select.disabled = !info.models.length;
  renderStyles();
}

// The job's settings for the optimiser towards the uploaded pictures ``styles``, or for the chosen model.
function settings(styles) {
  const body = {content: state.content.id, size: Number($("#size").value), preserve_color: $("#preserve-color").checked};
  if (!styles) return {...body, method: "model", model: $("#model").value};
  return {...body, method: "optimise", styles, iterations: Number($("#iterations").value),
          style_weight: strengthFromSlider($("#strength").value)};
}

function start() { return queue($("#start"), () => settings(method() === "model" ? null : state.styles.map((s) => s.id))); }

// "Paint finely": the chosen built-in style's painting becomes a style upload, and the optimiser paints with it.
function paintFinely() {
  const style = chosenStyle();
  return queue($("#fine"), async () => {
    const painting = await api(`/api/styles/${encodeURIComponent(style.name)}/upload`, {method: "POST"});
    return settings([painting.id]);
  });
}

// Queue the job that ``body`` (async) gives, pressed from ``button``, and show it in the live panel.
async function queue(button, body) {
  button.disabled = true;
  try {
    const job = await api("/api/jobs", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(await body())});
    upsert(job);
    state.focus = job.id;
    renderLive();
    if (window.innerWidth < 900) $("#live").scrollIntoView({behavior: "smooth"});
  } catch (error) {
    toast(error.message);
  } finally {
    updateStart();
  }
}

function tweak(job) {
  state.content = {id: job.content.id, name: job.content.name, url: job.content.thumbnail, loading: false, kind: job.content.kind};
  state.styles = job.styles.map((s) => ({id: s.id, name: s.name, url: s.thumbnail, loading: false}));
  const o = job.options;
  document.querySelector(`input[name=method][value=${o.method}]`).checked = true;
  if (o.model) $("#model").value = o.model;
  $("#size").value = o.size;
  $("#iterations").value = o.iterations;
  $("#strength").value = Math.max(-1, Math.min(3, Math.log10(Math.max(o.style_weight, 0.1))));
  $("#strength-value").textContent = o.style_weight;
  $("#preserve-color").checked = o.preserve_color;
  renderThumbs("content");
  renderThumbs("styles");
  updateMethod();
  $("#new-job").scrollIntoView({behavior: "smooth"});
  toast("That job's pictures and settings are in the form: change what you like, then press “Paint it”.", false);
}

// ---- jobs: actions, live panel, gallery --------------------------------------------------------------------

async function act(job, action) {
  try {
    if (action === "delete") {
      if (!confirm("Delete this job and its pictures?")) return;
      await api(`/api/jobs/${job.id}`, {method: "DELETE"});
      remove(job.id);
    } else {
      upsert(await api(`/api/jobs/${job.id}/${action}`, {method: "POST"}));
      if (action === "restart") { state.focus = job.id; renderLive(); }
    }
  } catch (error) {
    toast(error.message);
  }
}

function actions(job, compact) {
  const buttons = [];
  if (job.state === "queued" || job.state === "running") {
    buttons.push(el("button", {type: "button", class: "btn", onclick: () => act(job, "cancel")}, "Cancel"));
  }
  if (job.download) {
    buttons.push(el("a", {class: "btn solid download", href: job.download, download: `stylecraft-${job.id}.png`}, "Download"));
  }
  if (["failed", "cancelled", "interrupted"].includes(job.state)) {
    buttons.push(el("button", {type: "button", class: "btn", onclick: () => act(job, "restart")}, "Restart"));
  }
  if (job.state !== "queued" && job.state !== "running") {
    buttons.push(el("button", {type: "button", class: "btn", onclick: () => tweak(job)}, compact ? "Tweak" : "Re-run with tweaks"));
  }
  buttons.push(el("button", {type: "button", class: "btn danger", onclick: () => act(job, "delete")}, "Delete"));
  return el("div", {class: "actions"}, buttons);
}

function picture(job) {
  if (job.result) return job.result;
  if (job.preview) return job.preview;
  return null;
}

function shownJob() {
  if (state.focus && state.jobs.has(state.focus)) return state.jobs.get(state.focus);
  const jobs = [...state.jobs.values()];
  return jobs.find((j) => j.state === "running") || jobs.sort((a, b) => b.created - a.created)[0] || null;
}

function renderLive() {
  const body = $("#live-body");
  const job = shownJob();
  if (!job) {
    state.liveKey = "";
    $("#live-title").textContent = "Now painting";
    body.replaceChildren(el("div", {class: "empty"}, el("div", {class: "art"}),
      el("p", {}, el("strong", {text: "Nothing painted yet."})),
      el("p", {text: "Pick a photo and a style, then press “Paint it”. Progress and the picture appear here."})));
    return;
  }
  $("#live-title").textContent = job.state === "running" ? "Now painting" : job.state === "queued" ? "Up next" : "Your picture";
  const key = `${job.id}|${job.state}|${Boolean(picture(job))}|${Boolean(job.result)}|${job.error}`;
  if (key !== state.liveKey) {
    state.liveKey = key;
    const image = picture(job);
    body.replaceChildren(...[
      el("div", {class: "job-title"}, el("span", {class: `badge ${job.state}`, text: job.state}), el("strong", {text: names(job)})),
      el("div", {class: "stage"}, job.result && job.content.kind === "video" ? el("video", {id: "live-video", class: "result", src: job.result, controls: "", playsinline: "", "aria-label": "The painted video"})
        : image ? el("img", {id: "live-image", class: job.result ? "result" : "preview", src: image, alt: job.result ? "The result" : "The picture so far"})
        : el("div", {class: "waiting", text: job.state === "queued" ? "Waiting for its turn…" : job.state === "running" ? (job.content.kind === "video" ? "Painting the frames…" : "Warming up: the first preview comes after a few iterations…") : "No picture."})),
      el("div", {class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100}, el("div")),
      el("div", {class: "meta"}, el("span", {id: "live-state"}), el("span", {id: "live-time"})),
      el("div", {class: "losses", id: "live-losses"}),
      job.error ? el("div", {class: job.state === "interrupted" ? "note" : "error", text: job.error}) : null,
      job.state === "cancelled" && job.result ? el("div", {class: "note", text: `Stopped at iteration ${job.iteration}: the picture so far is kept.`}) : null,
      el("p", {class: "hint", text: summary(job)}),
      actions(job, false)].filter(Boolean));
  }
  updateLive(job);
}

function updateLive(job) {
  const image = $("#live-image");
  const url = picture(job);
  if (image && url && image.getAttribute("src") !== url) {
    const next = new Image();
    next.onload = () => { image.src = url; };
    next.src = url;
  }
  const fraction = job.iterations ? job.iteration / job.iterations : job.state === "done" ? 1 : 0;
  const bar = document.querySelector("#live .progress");
  if (bar) {
    bar.firstChild.style.width = `${Math.round(fraction * 100)}%`;
    bar.setAttribute("aria-valuenow", Math.round(fraction * 100));
  }
  const stateLine = $("#live-state");
  if (stateLine) stateLine.textContent = stateText(job);
  const time = $("#live-time");
  if (time) {
    const over = !["queued", "running"].includes(job.state);
    time.textContent = over ? (job.seed !== null ? `seed ${job.seed}` : "") : job.elapsed ? seconds(job.elapsed) : "";
  }
  const losses = $("#live-losses");
  if (losses && job.quality) {
    losses.setAttribute("aria-label", "Quality of the result");
    losses.replaceChildren(...QUALITY.map(([k, label, meaning, digits]) => el("div", {title: meaning}, label, el("b", {text: job.quality[k].toFixed(digits)}))));
  } else if (losses) {
    const terms = ["total", "content", "style", "tv"].filter((k) => k in job.losses);
    losses.replaceChildren(...terms.map((k) => el("div", {}, k === "tv" ? "smoothness" : k, el("b", {text: job.losses[k].toPrecision(3)}))));
  }
}

function card(job) {
  const image = job.thumbnail || job.content.thumbnail;  // the live panel shows the previews
  return el("article", {class: `item${state.focus === job.id ? " focus" : ""}`, id: `job-${job.id}`, "data-state": job.state},
    el("button", {type: "button", class: "pic", "aria-label": `Show ${names(job)}`, onclick: () => { state.focus = job.id; renderLive(); renderGallery(); if (window.innerWidth < 900) $("#live").scrollIntoView({behavior: "smooth"}); }},
      el("img", {src: image, alt: "", loading: "lazy"})),
    el("div", {class: "body"},
      el("div", {class: "row"}, el("span", {class: `badge ${job.state}`, text: job.state}), el("span", {class: "muted", text: when(job.created)})),
      el("div", {class: "names", title: names(job), text: names(job)}),
      el("div", {class: "settings", text: summary(job)}),
      el("div", {class: "settings progress-text", text: job.state === "done" ? seconds(job.elapsed) : stateText(job)}),
      job.quality ? el("div", {class: "settings quality", title: "content, style and colour distances, structure kept", text: qualityText(job)}) : null,
      actions(job, true)));
}

const cardKeys = new Map();
function renderGallery() {
  const gallery = $("#gallery");
  const jobs = [...state.jobs.values()].sort((a, b) => b.created - a.created);
  $("#gallery-count").textContent = jobs.length ? `${jobs.length} job${jobs.length > 1 ? "s" : ""}` : "";
  if (!jobs.length) {
    cardKeys.clear();
    gallery.replaceChildren(el("div", {class: "empty"}, el("p", {}, el("strong", {text: "Your pictures will appear here."})),
      el("p", {text: "Every job is kept with its settings, so you can download it again or re-run it with tweaks."})));
    return;
  }
  const nodes = jobs.map((job) => {
    const key = `${job.state}|${job.thumbnail}|${state.focus === job.id}|${job.queue_position}`;
    const existing = document.getElementById(`job-${job.id}`);
    if (existing && cardKeys.get(job.id) === key) {
      existing.querySelector(".progress-text").textContent = job.state === "done" ? seconds(job.elapsed) : stateText(job);
      return existing;
    }
    cardKeys.set(job.id, key);
    return card(job);
  });
  gallery.replaceChildren(...nodes);
}

function renderStatus() {
  const box = $("#status");
  const jobs = [...state.jobs.values()];
  const running = jobs.filter((j) => j.state === "running").length;
  const queued = jobs.filter((j) => j.state === "queued").length;
  box.className = `status ${!state.connected ? "offline" : running ? "busy" : "online"}`;
  const device = state.info ? state.info.device.toUpperCase() : "";
  $("#status-text").textContent = !state.connected ? "Reconnecting…"
    : running ? `Painting${queued ? ` · ${queued} waiting` : ""} · ${device}` : `Ready · ${device}`;
}

function render() {
  renderLive();
  renderGallery();
  renderStatus();
  updateStart();
}

function upsert(job) {
  const known = state.jobs.get(job.id);
  if (known && known.version > job.version) return;  // an older copy (a reply overtaken by an event)
  state.jobs.set(job.id, job);
  render();
}

function remove(id) {
  state.jobs.delete(id);
  cardKeys.delete(id);
  if (state.focus === id) state.focus = null;
  render();
}

async function refreshJobs() {
  const jobs = await api("/api/jobs");
  state.jobs = new Map(jobs.map((j) => [j.id, j]));
  render();
}

function connect() {
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => {
    state.connected = true;
    refreshJobs().catch((error) => toast(error.message));
  });
  events.addEventListener("error", () => { state.connected = false; renderStatus(); });
  events.addEventListener("job", (event) => upsert(JSON.parse(event.data)));
  events.addEventListener("deleted", (event) => remove(JSON.parse(event.data).id));
}

async function init() {
  $("#toast-close").addEventListener("click", hideToast);
  // A file dropped beside a drop zone must not make the browser leave the page to show it.
  for (const name of ["dragover", "drop"]) window.addEventListener(name, (event) => event.preventDefault());
  setupDrop($("#content-drop"), "content");
  setupDrop($("#style-drop"), "styles");
  for (const button of document.querySelectorAll("[data-pick]")) {
    button.addEventListener("click", () => $(`#${button.dataset.pick}`).click());
  }
  for (const radio of document.querySelectorAll("input[name=method]")) radio.addEventListener("change", updateMethod);
  $("#strength").addEventListener("input", () => { $("#strength-value").textContent = strengthFromSlider($("#strength").value); });
  $("#model").addEventListener("change", updateStart);
  $("#start").addEventListener("click", start);
  $("#fine").addEventListener("click", paintFinely);
  render();
  try {
    state.info = await api("/api/info");
  } catch (error) {
    $("#live-body").replaceChildren(el("div", {class: "error", text: error.message}));
    $("#status-text").textContent = "Not connected";
    return;
  }
  fillForm(state.info);
  updateMethod();
  connect();
  await refreshJobs();
}

document.addEventListener("DOMContentLoaded", () => { init().catch((error) => toast(error.message)); });
