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
  if (o.regions) parts.push(`${o.regions.colours.length} region${o.regions.colours.length > 1 ? "s" : ""}`);
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

// ---- regions: paint over the photo with a few colours, and pick a painting for each ----------------------------

// The canvas holds the brush colours, opaque, where painted and nothing elsewhere; it is shown half transparent
// over the photo. Sent as a PNG over black (black: no region, the photo is kept there).
const paint = {
  brushes: [],          // [{name, colour}] from /api/info
  background: "#000000",
  brush: null,          // the chosen brush; null: the eraser
  pointer: null,        // the pointer (or touch) painting now
  last: null,           // its last point, in canvas pixels
  photo: "",            // the address of the photo under the canvas
  painted: new Set(),   // names of the brushes with paint on the canvas (counted after each stroke)
  minShare: 0,          // a brush's share of the map below which it is no region (the server's)
  choices: new Map(),   // brush name -> "upload:ID" or "builtin:NAME"
};
// The longest side of the painted map: enough for edges, small to send.
const MAP_SIDE = 1024;

function capitalised(text) { return text[0].toUpperCase() + text.slice(1); }

function setupBrushes(info) {
  paint.brushes = Object.entries(info.brushes.colours).map(([name, colour]) => ({name, colour}));
  paint.background = info.brushes.background;
  paint.minShare = info.brushes.min_share;
  paint.brush = paint.brushes[0] || null;
  $("#swatches").replaceChildren(...paint.brushes.map((brush) => {
    const button = el("button", {type: "button", class: "swatch", "data-brush": brush.name, "aria-label": `${capitalised(brush.name)} brush`,
      title: capitalised(brush.name), onclick: () => chooseBrush(brush)});
    button.style.setProperty("--swatch", brush.colour);
    return button;
  }), el("button", {type: "button", class: "eraser", id: "eraser", "aria-pressed": "false", onclick: () => chooseBrush(null)}, "Eraser"));
  chooseBrush(paint.brush);
  renderChoices();
}

function chooseBrush(brush) {
  paint.brush = brush;
  for (const button of document.querySelectorAll("#swatches .swatch")) {
    button.setAttribute("aria-pressed", String(Boolean(brush) && button.dataset.brush === brush.name));
  }
  $("#eraser").setAttribute("aria-pressed", String(!brush));
  const dot = $("#brush-dot");
  dot.classList.toggle("erasing", !brush);
  if (brush) dot.style.setProperty("--swatch", brush.colour);
  showBrushSize();
}

function showBrushSize() {
  // The dot shows the brush's width on the screen, up to the box it sits in.
  $("#brush-dot").style.setProperty("--dot", `${Math.min(Number($("#brush-size").value), 38)}px`);
}

// Show ``content``'s photo under an empty canvas of its shape (once per photo).
function preparePaint(content) {
  const address = content && content.id && content.kind !== "video" ? `/api/uploads/${content.id}/image` : "";
  if (address === paint.photo) return;
  paint.photo = address;
  paint.painted.clear();
  $("#brush-panel").hidden = !address;
  $("#regions-hint").textContent = address ? "Paint over your photo: each colour is a region, with the painting you choose for it below. Where you paint nothing, the photo stays."
    : "Add a photo, then paint over it: each colour is a region with a painting of its own. Where you paint nothing, the photo stays.";
  if (!address) { $("#paint-photo").removeAttribute("src"); updateStart(); return; }
  const photo = $("#paint-photo");
  photo.onload = () => {
    const scale = Math.min(1, MAP_SIDE / Math.max(photo.naturalWidth, photo.naturalHeight));
    const canvas = $("#paint");
    canvas.width = Math.max(1, Math.round(photo.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(photo.naturalHeight * scale));
    $("#paint-stage").style.setProperty("--aspect", String(photo.naturalWidth / photo.naturalHeight));
    if (content.regionMap) loadMap(content.regionMap);
    updateStart();
  };
  photo.src = address;
  renderChoices();
}

// Paint a region map (a job's, for "re-run with tweaks") back onto the canvas: its black becomes unpainted.
function loadMap(address) {
  const map = new Image();
  map.onload = () => {
    const canvas = $("#paint");
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(map, 0, 0, canvas.width, canvas.height);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    const data = pixels.data;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.max(data[i], data[i + 1], data[i + 2]) < 64) data[i + 3] = 0;
    }
    context.putImageData(pixels, 0, 0);
    countPaint();
  };
  map.src = address;
}

function canvasPoint(event) {
  const canvas = $("#paint");
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function stroke(from, to) {
  const canvas = $("#paint");
  const context = canvas.getContext("2d");
  // The brush's size is in screen pixels: the same under the finger whatever the photo's size.
  const width = Number($("#brush-size").value) * canvas.width / canvas.getBoundingClientRect().width;
  context.globalCompositeOperation = paint.brush ? "source-over" : "destination-out";
  context.strokeStyle = context.fillStyle = paint.brush ? paint.brush.colour : "#000";
  context.lineWidth = width;
  context.lineCap = context.lineJoin = "round";
  context.beginPath();
  if (from[0] === to[0] && from[1] === to[1]) {
    context.arc(to[0], to[1], width / 2, 0, 2 * Math.PI);
    context.fill();
  } else {
    context.moveTo(...from);
    context.lineTo(...to);
    context.stroke();
  }
}

function strokeStart(id, event) {
  if (paint.pointer !== null) return false;  // a second finger does not paint
  paint.pointer = id;
  paint.last = canvasPoint(event);
  stroke(paint.last, paint.last);
  return true;
}

function strokeMove(id, events) {
  if (paint.pointer !== id) return;
  for (const event of events) {
    const point = canvasPoint(event);
    stroke(paint.last, point);
    paint.last = point;
  }
}

function strokeEnd(id) {
  if (paint.pointer !== id) return;
  paint.pointer = null;
  countPaint();
}

// Which brushes have enough paint on the canvas to be a region.
function countPaint() {
  const canvas = $("#paint");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const rgb = paint.brushes.map((b) => [1, 3, 5].map((i) => parseInt(b.colour.slice(i, i + 2), 16)));
  const counts = new Array(rgb.length).fill(0);
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] < 128) continue;
    let best = 0, bestDistance = Infinity;
    for (let b = 0; b < rgb.length; b++) {
      const distance = (data[i] - rgb[b][0]) ** 2 + (data[i + 1] - rgb[b][1]) ** 2 + (data[i + 2] - rgb[b][2]) ** 2;
      if (distance < bestDistance) { best = b; bestDistance = distance; }
    }
    counts[best] += 1;
  }
  const least = paint.minShare * canvas.width * canvas.height;
  paint.painted = new Set(paint.brushes.filter((b, i) => counts[i] >= least).map((b) => b.name));
  renderChoices();
  updateStart();
}

function setupCanvas() {
  const canvas = $("#paint");
  if (window.PointerEvent) {  // mouse, pen and touch alike
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button > 0 || !strokeStart(event.pointerId, event)) return;
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      strokeMove(event.pointerId, event.getCoalescedEvents ? event.getCoalescedEvents() : [event]);
    });
    for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, (event) => strokeEnd(event.pointerId));
  } else {  // older phone browsers: touch events
    const touch = (handler) => (event) => {
      event.preventDefault();
      for (const point of event.changedTouches) handler(point);
    };
    canvas.addEventListener("touchstart", touch((t) => strokeStart(t.identifier, t)), {passive: false});
    canvas.addEventListener("touchmove", touch((t) => strokeMove(t.identifier, [t])), {passive: false});
    for (const name of ["touchend", "touchcancel"]) canvas.addEventListener(name, touch((t) => strokeEnd(t.identifier)), {passive: false});
  }
  $("#brush-size").addEventListener("input", showBrushSize);
  $("#brush-clear").addEventListener("click", () => {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    countPaint();
  });
}

// One row per brush: its colour and a choice among the uploaded paintings and the built-in ones.
function renderChoices() {
  const uploaded = state.styles.filter((s) => s.id);
  const known = new Set([...uploaded.map((s) => `upload:${s.id}`), ...builtins().map((m) => `builtin:${m.name}`)]);
  $("#region-choices").replaceChildren(...paint.brushes.map((brush) => {
    if (!known.has(paint.choices.get(brush.name))) paint.choices.delete(brush.name);
    const select = el("select", {"data-brush": brush.name, "aria-label": `Painting for the ${brush.name} region`,
      onchange: () => {
        if (select.value) paint.choices.set(brush.name, select.value); else paint.choices.delete(brush.name);
        updateStart();
      }},
    el("option", {value: "", text: paint.painted.has(brush.name) ? "Choose a painting…" : "No painting"}),
    uploaded.length ? el("optgroup", {label: "Your paintings"}, uploaded.map((s) => el("option", {value: `upload:${s.id}`, text: s.name}))) : null,
    builtins().length ? el("optgroup", {label: "Built-in paintings"}, builtins().map((m) => el("option", {value: `builtin:${m.name}`, text: m.title}))) : null);
    select.value = paint.choices.get(brush.name) || "";
    const chip = el("span", {class: "chip", "aria-hidden": "true"});
    chip.style.setProperty("--swatch", brush.colour);
    return el("label", {class: `region-choice${paint.painted.has(brush.name) ? "" : " unused"}`}, chip, el("span", {text: capitalised(brush.name)}), select);
  }));
}

// Why the regions cannot be painted yet ("" when they can).
function regionsProblem() {
  if (!paint.painted.size) return "Paint a region over the photo.";
  const painted = paint.brushes.filter((b) => paint.painted.has(b.name));
  const missing = painted.find((b) => !paint.choices.get(b.name));
  if (missing) return `Choose a painting for the ${missing.name} region.`;
  const chosen = painted.map((b) => paint.choices.get(b.name));
  const twice = painted.find((b, i) => chosen.indexOf(chosen[i]) !== i);
  if (twice) return `The ${twice.name} region has the same painting as another: paint both in one colour.`;
  return "";
}

// The job's settings: the map as an upload, and the painted colours with their paintings.
async function regionSettings() {
  const canvas = $("#paint");
  const flat = el("canvas", {width: canvas.width, height: canvas.height});
  const context = flat.getContext("2d");
  context.fillStyle = paint.background;
  context.fillRect(0, 0, flat.width, flat.height);
  context.drawImage(canvas, 0, 0);
  const blob = await new Promise((resolve) => flat.toBlob(resolve, "image/png"));
  const form = new FormData();
  form.append("file", blob, "regions.png");
  const map = await api("/api/uploads", {method: "POST", body: form});
  const colours = [], styles = [];
  for (const brush of paint.brushes.filter((b) => paint.painted.has(b.name))) {
    const [kind, name] = paint.choices.get(brush.name).split(/:(.*)/s);
    styles.push(kind === "builtin" ? (await api(`/api/styles/${encodeURIComponent(name)}/upload`, {method: "POST"})).id : name);
    colours.push(brush.colour);
  }
  return {...settings(styles), regions: {map: map.id, colours}};
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
  if (kind === "content") {
    renderStyles();
    preparePaint(state.content && !state.content.loading ? state.content : null);
  } else {
    renderChoices();
  }
}

// Resolves with the studio's info once /api/info has answered: files picked before that wait for it.
let infoLoaded;
const infoReady = new Promise((resolve) => { infoLoaded = resolve; });

async function addFiles(kind, files) {
  const limits = (await infoReady).limits;
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
  $("#new-job").dataset.method = method();
  $("#style-pane").hidden = model;
  $("#model-pane").hidden = !model;
  $("#regions-pane").hidden = method() !== "regions";
  $("#style-hint").textContent = method() === "regions" ? "Your own paintings, to choose for a region above." : "One or more; several are blended.";
  $("#iterations-field").hidden = model;
  $("#strength-field").hidden = model;
  $("#size").placeholder = model ? "the photo's own" : String(state.info ? state.info.defaults.size : "");
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
  else if (method() === "regions") reason = regionsProblem();
  else if (method() === "model" && !$("#model").value) reason = "No real-time model to use yet.";
  button.disabled = Boolean(reason);
  markChosen();
  const chosen = chosenStyle();
  $("#fine").hidden = !chosen;
  $("#fine").disabled = Boolean(reason) || !chosen || state.content.kind === "video";
  if (reason) { hint.textContent = reason; return; }
  hint.textContent = queueText() || `Runs on this machine's ${state.info.device.toUpperCase()}.`;
}

// What a new job would wait for: the jobs painting now and those waiting, or "" for none.
function queueText() {
  const jobs = [...state.jobs.values()];
  const running = jobs.filter((j) => j.state === "running").length;
  const waiting = jobs.filter((j) => j.state === "queued").length;
  if (!running && !waiting) return "";
  const parts = [running ? `${running} job${running > 1 ? "s" : ""} painting` : "",
                 waiting ? `${waiting} waiting` : ""].filter(Boolean);
  return `${parts.join(" and ")} now: a new job waits its turn.`;
}

function fillForm(info) {
  const d = info.defaults;
  // Offered sizes: those at which a 3:2 photo fits the studio's pixel limit (the server checks the photo's own).
  $("#sizes").replaceChildren(...[256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192]
    .filter((s) => s * Math.round(s * 2 / 3) <= info.limits.max_pixels)
    .map((s) => el("option", {value: s, label: s === 256 ? "quick" : s === d.size ? "standard" : s === 1024 ? "detailed" : null})));
  $("#size").value = "";  // empty: the server's default, the photo's own size for a model (as `apply`)
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
  setupBrushes(info);
  renderStyles();
}

// The job's settings for the optimiser towards the uploaded pictures ``styles``, or for the chosen model.
function settings(styles) {
  const size = $("#size").value ? Number($("#size").value) : undefined;  // none: the server's default
  const body = {content: state.content.id, size, preserve_color: $("#preserve-color").checked};
  if (!styles) return {...body, method: "model", model: $("#model").value};
  return {...body, method: "optimise", styles, iterations: Number($("#iterations").value),
          style_weight: strengthFromSlider($("#strength").value)};
}

function start() {
  if (method() === "regions") return queue($("#start"), regionSettings);
  return queue($("#start"), () => settings(method() === "model" ? null : state.styles.map((s) => s.id)));
}

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
  document.querySelector(`input[name=method][value=${o.regions ? "regions" : o.method}]`).checked = true;
  if (o.regions) {  // the map back on the canvas, and each colour's painting
    state.content.regionMap = `/api/uploads/${o.regions.map}/image`;
    paint.photo = "";
    paint.choices = new Map();
    o.regions.colours.forEach((colour, i) => {
      const brush = paint.brushes.find((b) => b.colour === colour.toLowerCase());
      if (brush) paint.choices.set(brush.name, `upload:${job.styles[i].id}`);
    });
  }
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
    const left = job.state === "running" && job.seconds_left !== null ? ` · about ${seconds(job.seconds_left)} left` : "";
    time.textContent = over ? (job.seed !== null ? `seed ${job.seed}` : "") : job.elapsed ? `${seconds(job.elapsed)}${left}` : "";
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
  setupCanvas();
  render();
  try {
    state.info = await api("/api/info");
    infoLoaded(state.info);
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
