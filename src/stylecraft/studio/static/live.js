"use strict";
// The live camera page: the camera's frames go to the studio's WebSocket (/api/live) as JPEGs, one in flight,
// and come back painted. The protocol is described in stylecraft/studio/live.py.

const $ = (selector) => document.querySelector(selector);
const SLOW_FPS = 8;          // below this the page asks for a smaller size
const ANSWER_TIMEOUT = 2000; // ms without an answer before the next frame goes anyway
const JPEG_QUALITY = 0.8;

// sentAt: when each frame of this connection was sent, by its number (the studio numbers them the same way)
const state = {socket: null, sentAt: new Map(), timer: null, started: 0};
// What the page measured, for people and for benchmarks/live.py: each painted frame's round trip and the
// studio's time per stage.
window.liveStats = {frames: [], sent: 0};

function status(text, kind = "online") {
  $("#status-text").textContent = text;
  $("#status").className = `status ${kind}`;
}

function notice(html) {
  $("#notice").innerHTML = html;
  $("#notice").hidden = !html;
}

function escape(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span.innerHTML;
}

async function api(path, options = {}) {
  const response = await fetch(path, {credentials: "same-origin", ...options});
  let body = null;
  try { body = await response.json(); } catch (error) { body = null; }
  if (!response.ok) throw new Error((body && body.error) || `The server answered ${response.status}`);
  return body;
}

// --- the camera -----------------------------------------------------------------------------------------------

function insecureNotice() {
  const here = `${location.protocol}//${location.host}`;
  return `<strong>The camera is not available on this address.</strong>
    <span>Browsers give the camera only to pages served over HTTPS or from this computer itself
    (localhost, 127.0.0.1), and this page comes from <code>${escape(here)}</code>.</span>
    <span>Start the studio with <code>stylecraft live --host 127.0.0.1</code> and open it on the computer it
    runs on, or serve HTTPS: <code>stylecraft live --host ${escape(location.hostname)} --token … --certfile
    cert.pem --keyfile key.pem</code>.</span>`;
}

async function startCamera() {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    notice(insecureNotice());
    status("No camera", "offline");
    return false;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia(
      {video: {width: {ideal: 1280}, height: {ideal: 720}}, audio: false});
    const video = $("#camera");
    video.srcObject = stream;
    await video.play();
    return true;
  } catch (error) {
    const reasons = {
      NotAllowedError: "The camera was refused. Allow it for this page in the browser's site settings, then reload.",
      NotFoundError: "No camera was found. Connect one, then reload.",
      NotReadableError: "The camera is in use by another program. Close it there, then reload.",
    };
    notice(`<strong>${escape(reasons[error.name] || `The camera could not start (${error.message}).`)}</strong>`);
    status("No camera", "offline");
    return false;
  }
}

function frameSize() {
  const [width, height] = $("#size").value.split("x").map(Number);
  return {width, height};
}

// Draws the camera's frame on a canvas of (width, height), cropped to fill it, mirrored if asked.
function capture(width, height) {
  const video = $("#camera");
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const scale = Math.max(width / video.videoWidth, height / video.videoHeight);
  const drawnWidth = video.videoWidth * scale, drawnHeight = video.videoHeight * scale;
  if ($("#mirror").checked) {
    context.translate(width, 0);
    context.scale(-1, 1);
  }
  context.drawImage(video, (width - drawnWidth) / 2, (height - drawnHeight) / 2, drawnWidth, drawnHeight);
  return canvas;
}

function blobOf(canvas, type, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, type, quality));
}

// --- the socket -----------------------------------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/api/live`);
  socket.binaryType = "blob";
  state.socket = socket;
  state.sentAt.clear();
  window.liveStats.sent = 0;
  status("Connecting…", "busy");
  socket.onopen = () => {
    sendSettings();
    sendFrame();
  };
  socket.onmessage = (event) => (typeof event.data === "string" ? onText(JSON.parse(event.data)) : onPicture(event.data));
  socket.onclose = (event) => {
    clearTimeout(state.timer);
    state.socket = null;
    if (event.code === 1000) return;
    const reason = event.reason || "The connection to the studio was lost.";
    if ([1003, 1008, 1009].includes(event.code)) {
      notice(`<strong>The live view stopped.</strong><span>${escape(reason)}</span>`);
      status("Stopped", "offline");
    } else {
      status("Reconnecting…", "offline");
      setTimeout(connect, 2000);
    }
  };
}

let pending = null;
function onText(message) {
  if (message.type === "frame") {
    pending = message;
  } else if (message.type === "status") {
    status(message.text, "busy");
  } else if (message.type === "ready") {
    $("#backend").textContent = `${message.backend}${message.steady ? ", steadied" : ""}`;
    status("Live", "online");
    notice("");
  } else if (message.type === "error") {
    status(message.error, "offline");
  }
}

async function onPicture(blob) {
  const now = performance.now();
  const meta = pending || {};
  pending = null;
  window.liveStats.frames.push({...meta, rtt_ms: now - state.sentAt.get(meta.seq), at: now, size: $("#size").value});
  for (const seq of state.sentAt.keys()) if (seq <= meta.seq) state.sentAt.delete(seq);
  if (window.liveStats.frames.length > 2000) window.liveStats.frames.shift();
  const bitmap = await createImageBitmap(blob);
  const canvas = $("#painted");
  if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  bitmap.close();
  canvas.dataset.frames = String(Number(canvas.dataset.frames || 0) + 1);
  if (!state.started) state.started = now;
  $("#snapshot").disabled = false;
  meter(now);
  // an answer to a frame sent before a timeout: the latest frame is still in flight, and its answer sends the next
  if (meta.seq >= window.liveStats.sent) sendFrame();
}

async function sendFrame() {
  clearTimeout(state.timer);
  const socket = state.socket;
  const video = $("#camera");
  if (!socket || socket.readyState !== WebSocket.OPEN || !video.videoWidth) {
    state.timer = setTimeout(sendFrame, 200);
    return;
  }
  const {width, height} = frameSize();
  const blob = await blobOf(capture(width, height), "image/jpeg", JPEG_QUALITY);
  window.liveStats.sent += 1;
  state.sentAt.set(window.liveStats.sent, performance.now());
  socket.send(blob);
  state.timer = setTimeout(sendFrame, ANSWER_TIMEOUT);
}

function sendSettings() {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
  state.socket.send(JSON.stringify({style: styleSpec(), strength: Number($("#strength").value) / 100}));
}

function meter(now) {
  const frames = window.liveStats.frames;
  const recent = frames.filter((frame) => frame.at > now - 2000);
  const fps = recent.length / Math.min(2, (now - state.started) / 1000 || 1);
  const latencies = frames.slice(-20).map((frame) => frame.rtt_ms).sort((a, b) => a - b);
  const median = latencies[Math.floor(latencies.length / 2)];
  $("#fps").textContent = `${fps.toFixed(1)} fps`;
  $("#latency").textContent = `${Math.round(median)} ms`;
  // judged once the view has run for 3 s at this size, so that loading a style does not count
  const settled = now - state.started > 3000 && recent.every((frame) => frame.size === $("#size").value);
  const slow = settled && fps < SLOW_FPS;
  $("#slow").hidden = !slow;
  if (slow) {
    $("#slow").textContent = $("#size").selectedIndex > 0
      ? `Painting is slow on this computer (under ${SLOW_FPS} frames a second): choose a smaller size.`
      : `Painting is slow on this computer even at the smallest size (under ${SLOW_FPS} frames a second): ` +
        "install OpenVINO (pip install \"stylecraft[openvino]\"), the fastest way to paint on a CPU.";
  }
}

// --- styles ---------------------------------------------------------------------------------------------------

function styleSpec() {
  const style = $("#style").value;
  const blend = $("#blend").value;
  if (!blend || blend === style || !isBuiltin(style)) return style;
  const share = Number($("#blend-share").value) / 100;
  return `${style}:${(1 - share).toFixed(2)},${blend}:${share.toFixed(2)}`;
}

function isBuiltin(name) {
  const option = [...$("#style").options].find((item) => item.value === name);
  return Boolean(option && option.dataset.builtin);
}

function option(value, label, builtin) {
  const item = document.createElement("option");
  item.value = value;
  item.textContent = label;
  if (builtin) item.dataset.builtin = "1";
  return item;
}

async function loadStyles() {
  const models = await api("/api/models");
  const builtin = document.createElement("optgroup");
  builtin.label = "Built-in styles";
  const own = document.createElement("optgroup");
  own.label = "Your networks";
  for (const model of models) {
    const label = model.builtin ? `${model.title || model.name}${model.artist ? ` (${model.artist})` : ""}` : model.name;
    (model.builtin ? builtin : own).append(option(model.name, label, model.builtin));
    if (model.builtin) $("#blend").append(option(model.name, label, true));
  }
  $("#style").append(builtin);
  if (own.children.length) $("#style").append(own);
}

async function uploadPainting(file) {
  const form = new FormData();
  form.append("file", file);
  status("Uploading the painting…", "busy");
  try {
    const upload = await api("/api/uploads", {method: "POST", body: form});
    let group = $("#style optgroup[data-paintings]");
    if (!group) {
      group = document.createElement("optgroup");
      group.label = "Your paintings";
      group.dataset.paintings = "1";
      $("#style").append(group);
    }
    group.append(option(`upload:${upload.id}`, upload.name, false));
    $("#style").value = `upload:${upload.id}`;
    styleChanged();
  } catch (error) {
    status(error.message, "offline");
  }
}

function updateControls() {
  const style = $("#style").value;
  const builtin = isBuiltin(style);
  $("#blend").disabled = !builtin;
  $("#blend-share").disabled = !builtin || !$("#blend").value;
  // the optimiser paints with one painting: a built-in style's or an uploaded one
  const onePainting = (builtin && !$("#blend").value) || style.startsWith("upload:");
  $("#refine").disabled = $("#snapshot").disabled || !onePainting;
}

function styleChanged() {
  updateControls();
  sendSettings();
}

// --- snapshots ------------------------------------------------------------------------------------------------

async function snapshot(refine) {
  const video = $("#camera");
  const says = $("#snapshot-state");
  says.textContent = "Sending the snapshot…";
  try {
    const blob = await blobOf(capture(video.videoWidth, video.videoHeight), "image/jpeg", 0.92);
    const form = new FormData();
    form.append("file", blob, `live-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.jpg`);
    const photo = await api("/api/uploads", {method: "POST", body: form});
    const style = $("#style").value;
    const painting = style.startsWith("upload:") ? style.slice(7) : null;
    let job;
    if (refine || painting) {
      const styleId = painting || (await api(`/api/styles/${encodeURIComponent(style)}/upload`, {method: "POST"})).id;
      job = {content: photo.id, method: "optimise", styles: [styleId]};
    } else {
      job = {content: photo.id, method: "model", model: styleSpec()};
    }
    await api("/api/jobs", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(job)});
    says.innerHTML = `Snapshot queued: it appears in <a href="/">the studio's gallery</a>.`;
  } catch (error) {
    says.textContent = error.message;
  }
}

// --- start ----------------------------------------------------------------------------------------------------

function bind() {
  $("#style").addEventListener("change", styleChanged);
  $("#blend").addEventListener("change", styleChanged);
  $("#blend-share").addEventListener("input", () => {
    $("#blend-out").textContent = `${$("#blend-share").value}%`;
  });
  $("#blend-share").addEventListener("change", sendSettings);
  $("#strength").addEventListener("input", () => {
    $("#strength-out").textContent = `${$("#strength").value}%`;
  });
  $("#strength").addEventListener("change", sendSettings);
  $("#size").addEventListener("change", () => { state.started = performance.now(); });
  $("#painting").addEventListener("change", () => {
    if ($("#painting").files[0]) uploadPainting($("#painting").files[0]);
  });
  $("#snapshot").addEventListener("click", () => snapshot(false));
  $("#refine").addEventListener("click", () => snapshot(true));
  new MutationObserver(updateControls).observe($("#snapshot"), {attributes: true, attributeFilter: ["disabled"]});
}

async function start() {
  bind();
  const camera = startCamera();
  try {
    await loadStyles();
    updateControls();
  } catch (error) {
    status(error.message, "offline");
    return;
  }
  if (await camera) connect();
}

start();
