// The livematte demo page: sends the camera to the server and shows the processed video it sends back on
// the same peer connection; effects, selection and live stats travel over a data channel ("control").

const $ = (id) => document.getElementById(id);
const STAGE_NAMES = { engine: "engine", stabilize: "tracking + fusion", composite: "compositing" };

const state = { peer: null, pc: null, channel: null, selected: null, status: null, previous: new Map() };

function show(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = false;
}

function unreachable() {
  show(`The livematte server at ${location.origin} is unreachable: is \`livematte serve\` still running? ` +
       "Start it again and reload this page.");
}

function cameraProblem(error) {
  switch (error.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Camera access was denied. Allow the camera for this page (the camera icon in the address bar) and reload.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found. Connect a camera and reload.";
    case "NotReadableError":
      return "The camera is busy or failed to start: close other applications that use it and reload.";
    default:
      return `The camera could not be opened (${error.name}: ${error.message}).`;
  }
}

function send(message) {
  if (state.channel?.readyState === "open") state.channel.send(JSON.stringify(message));
}

// One set of effect controls (effect, tint colour, strength) for a fieldset; `track()` says whom it changes.
function effectControls(fieldset, track) {
  fieldset.append($("effect-controls").content.cloneNode(true));
  const [effect, tint, strength] = [".effect", ".tint", ".strength"].map((s) => fieldset.querySelector(s));
  const tintOnly = fieldset.querySelectorAll(".tint-only");
  const showTint = () => tintOnly.forEach((el) => { el.hidden = effect.value !== "tint"; });
  const changed = () => {
    showTint();
    send({ type: "effect", track: track(), effect: effect.value, tint: tint.value, strength: Number(strength.value) });
  };
  [effect, tint, strength].forEach((input) => input.addEventListener("change", changed));
  showTint();
  return {
    show(person) {
      effect.value = person.effect;
      tint.value = person.tint.toLowerCase();
      strength.value = person.strength;
      showTint();
    },
  };
}

const controls = {
  person: effectControls($("person"), () => state.selected),
  others: effectControls($("others"), () => null),
};

// The pixel of the processed video under a click (the video is letterboxed inside its element).
function videoPixel(video, event) {
  const rect = video.getBoundingClientRect();
  const scale = Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
  const x = (event.clientX - rect.left - (rect.width - video.videoWidth * scale) / 2) / scale;
  const y = (event.clientY - rect.top - (rect.height - video.videoHeight * scale) / 2) / scale;
  if (!(x >= 0 && y >= 0 && x < video.videoWidth && y < video.videoHeight)) return null;
  return { x: Math.floor(x), y: Math.floor(y) };
}

function select(track, person) {
  state.selected = track;
  const legend = $("selection");
  legend.dataset.track = track ?? "";
  legend.textContent = track === null ? "No one there: click on a person" : `Person ${track}`;
  $("person").disabled = track === null;
  if (person) controls.person.show(person);
}

function handle(message) {
  switch (message.type) {
    case "selected":
      select(message.track, message.state);
      break;
    case "effect":
      if (message.track === null) controls.others.show(message.state);
      else if (message.track === state.selected) controls.person.show(message.state);
      break;
    case "plate":
      show(`Capturing the empty scene over the next ${message.frames} frames: stay out of the picture.`, "info");
      break;
    case "stats":
      showStats(message);
      break;
    case "error":
      show(message.message);
      break;
  }
}

// Per-frame averages over the last stats interval from two getStats() reports: (Δ total) / (Δ count).
function perFrame(id, report, total, count) {
  const before = state.previous.get(id);
  state.previous.set(id, report);
  if (!before || report[count] === before[count]) return null;
  return (report[total] - before[total]) / (report[count] - before[count]);
}

async function browserTimes(pc) {
  const times = {};
  (await pc.getStats()).forEach((r) => {
    if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") times.rtt = r.currentRoundTripTime;
    if (r.type === "outbound-rtp" && r.kind === "video") {
      times.encode = perFrame(r.id, r, "totalEncodeTime", "framesEncoded");
    }
    if (r.type === "inbound-rtp" && r.kind === "video") {
      times.jitter = perFrame(`${r.id}/jitter`, r, "jitterBufferDelay", "jitterBufferEmittedCount");
      times.decode = perFrame(`${r.id}/decode`, r, "totalDecodeTime", "framesDecoded");
    }
  });
  return times;
}

async function showStats(stats) {
  const ms = (seconds) => (seconds == null ? null : seconds * 1000);
  const times = state.pc ? await browserTimes(state.pc) : {};
  const parts = [ms(times.encode), ms(times.rtt), stats.server_ms, ms(times.jitter), ms(times.decode)];
  const rows = [
    ["server fps", stats.fps.toFixed(1)],
    ["video", `${stats.width}×${stats.height}, ${stats.people} ${stats.people === 1 ? "person" : "people"}, ${stats.dropped} stale frames dropped`],
    ...Object.entries(stats.stages_ms).map(([stage, value]) => [`${STAGE_NAMES[stage] ?? stage} ms`, value.toFixed(1)]),
    ["server, arrival to sent ms", stats.server_ms?.toFixed(1) ?? "–"],
    ["network round trip ms", times.rtt == null ? "–" : ms(times.rtt).toFixed(1)],
    ["glass-to-glass ms (estimate)",
      parts.includes(null) || parts.includes(undefined) ? "–" : parts.reduce((a, b) => a + b, 0).toFixed(0),
      "your browser's encode + network round trip + server + jitter buffer + decode (WebRTC statistics); " +
      "camera capture, the server's encoder and the screen are not counted"],
  ];
  $("stats").replaceChildren(...rows.flatMap(([name, value, explanation]) => {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = name;
    dd.textContent = value;
    if (explanation) dt.title = explanation;
    return [dt, dd];
  }));
}

async function uploadBackground(file) {
  const forPerson = $("background-target").value === "person";
  if (forPerson && state.selected === null) return show("Select a person first (click them in the processed video).");
  const limit = state.status.upload_limit_bytes;
  const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);
  if (file.size > limit) return show(`That image is ${mib(file.size)} MiB; the server takes at most ${mib(limit)} MiB.`);
  const url = `/peers/${state.peer}/background` + (forPerson ? `?track=${state.selected}` : "");
  let response;
  try {
    response = await fetch(url, { method: "POST", body: file });
  } catch {
    return unreachable();
  }
  const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) return show(body.error);
  show(`Background set for ${forPerson ? `person ${state.selected}` : "everyone"} (${body.width}×${body.height}).`, "info");
}

function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => { if (pc.iceGatheringState === "complete") resolve(); });
  });
}

async function start() {
  try {
    state.status = await (await fetch("/status")).json();
  } catch {
    return unreachable();
  }
  $("engine").textContent = state.status.engine;
  $("plate").hidden = !state.status.clean_plate;
  if (!navigator.mediaDevices?.getUserMedia) {
    return show("Browsers give the camera only to secure pages: open this page as http://127.0.0.1:" +
                `${location.port || 80} on the server machine, or serve it over https.`);
  }
  let camera;
  try {
    camera = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } }, audio: false,
    });
  } catch (error) {
    return show(cameraProblem(error));
  }
  $("local").srcObject = camera;

  const pc = new RTCPeerConnection({ iceServers: state.status.ice_servers.map((urls) => ({ urls })) });
  state.pc = pc;
  const channel = pc.createDataChannel("control");
  channel.addEventListener("message", (event) => handle(JSON.parse(event.data)));
  channel.addEventListener("open", () => {
    state.channel = channel;
    ["others", "background"].forEach((id) => { $(id).disabled = false; });
  });
  channel.addEventListener("close", () => ["person", "others", "background"].forEach((id) => { $(id).disabled = true; }));
  camera.getVideoTracks().forEach((track) => pc.addTrack(track, camera));
  pc.addEventListener("track", (event) => { $("processed").srcObject = new MediaStream([event.track]); });
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "failed") show("The connection to the server failed. Reload the page to try again.");
    if (pc.connectionState === "disconnected") show("The connection to the server was lost; waiting for it to come back…");
    if (pc.connectionState === "connected") $("message").hidden = true;
  });
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc);  // the server does not trickle: the offer carries every candidate

  let response;
  try {
    response = await fetch("/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
    });
  } catch {
    pc.close();
    return unreachable();
  }
  const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) {
    pc.close();
    return show(answer.error);
  }
  state.peer = answer.peer;
  await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  addEventListener("pagehide", () => {
    navigator.sendBeacon(`/peers/${state.peer}/leave`);
    pc.close();
  });
}

$("processed").addEventListener("click", (event) => {
  const pixel = videoPixel(event.currentTarget, event);
  if (pixel) send({ type: "select", ...pixel });
});
$("background-file").addEventListener("change", async (event) => {
  const [file] = event.target.files;
  if (file) await uploadBackground(file);
  event.target.value = "";
});
$("plate").addEventListener("click", () => send({ type: "plate" }));

start().catch((error) => show(`Something went wrong: ${error.message}`));
