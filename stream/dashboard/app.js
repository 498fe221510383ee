// riverguard dashboard: polls the admin API, shows the guard's state and why, draws the story and
// carries out the operator's commands. Plain ES modules, no libraries, no network beyond this service.

import { drawMetricChart, drawSmallChart } from "./charts.js";
import { fmtAgo, fmtClock, fmtInt, fmtMetric, fmtRate } from "./format.js";
import { renderAlarms, renderJournal, renderSnapshots } from "./tables.js";

const POLL_MS = 1500;
const SNAPSHOTS_EVERY_MS = 10000; // also refreshed whenever a new snapshot or decision shows up
const MAX_SAMPLES = 7200; // the server keeps as many (two hours at one sample a second)
const TOKEN_KEY = "riverguard.token";

const MODE_MEANING = {
  learning: () => "Predicting and learning from every labeled event. The guard watches the error and the inputs.",
  quarantine: (st) => {
    const q = st.quarantine || {};
    const restored = q.restored ? ` to ${q.restored}` : "";
    const onset = q.onset != null ? `, taken before the change at event ${fmtInt(q.onset)}` : "";
    return `Learning is stopped. The live model was rolled back${restored}${onset} and is frozen; ` +
      `a candidate learns in shadow. The guard resumes when the incident is over, or promotes the ` +
      `candidate if the world changed (labeled events so far: ${fmtInt(q.labeled || 0)}).`;
  },
  paused: () => "Learning is stopped until an operator resumes it; nothing resumes it automatically. " +
    "Resume learns again with the live model; or roll back to a snapshot first.",
  unknown: () => "No status yet.",
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  status: null,
  samples: [], // history samples, oldest first, at most MAX_SAMPLES
  lastSeq: -1,
  lastTime: null,
  decisions: [], // newest first
  alarms: [], // newest first
  snapshots: [],
  snapshotsAt: 0,
  snapshotsKey: "",
  authProblem: null,
  connection: null,
  hover: null, // x of the mouse over the metric chart, in chart units
};

const $ = (selector) => document.querySelector(selector);

// -- API ------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    throw new HttpError(0, `cannot reach the service (${exc.message})`);
  }
  const text = await response.text();
  let data;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { error: text };
  }
  if (response.status === 401) {
    setAuthProblem(state.token
      ? "401: token refused (see RIVERGUARD_ADMIN_TOKEN)"
      : "401: enter the admin token");
    throw new HttpError(401, "the service refused the token");
  }
  if (!response.ok) throw new HttpError(response.status, data.error || response.statusText);
  if (state.authProblem) setAuthProblem(null);
  return data;
}

function setAuthProblem(message) {
  state.authProblem = message;
  const el = $("#auth-message");
  el.textContent = message || (state.token ? "token set for this tab" : "");
  el.className = `auth-message ${message ? "bad" : state.token ? "good" : ""}`;
  $("#token-input").setAttribute("aria-invalid", message ? "true" : "false");
}

// -- polling --------------------------------------------------------------------------------

let timer = null;
let polling = false;
let again = false;

async function poll() {
  if (polling) {
    again = true;
    return;
  }
  polling = true;
  clearTimeout(timer);
  try {
    const [status, decisions] = await Promise.all([api("/api/status"), api("/api/decisions?limit=200"), pollHistory()]);
    const newDecision = JSON.stringify(status.last_decision || null) !== JSON.stringify(state.status?.last_decision || null);
    state.status = status;
    state.decisions = decisions.decisions || [];
    state.alarms = decisions.alarms || [];
    const snapKey = `${status.last_snapshot?.id}|${status.mode}`;
    if (newDecision || snapKey !== state.snapshotsKey || Date.now() - state.snapshotsAt > SNAPSHOTS_EVERY_MS) {
      await refreshSnapshots();
      state.snapshotsKey = snapKey;
    }
    state.connection = { ok: true, at: Date.now() / 1000 };
  } catch (exc) {
    state.connection = { ok: false, message: exc.status === 401 ? "waiting for a valid admin token" : exc.message };
  } finally {
    polling = false;
  }
  render();
  if (again) {
    again = false;
    poll();
  } else {
    timer = setTimeout(poll, POLL_MS);
  }
}

async function refreshSnapshots() {
  const data = await api("/api/snapshots");
  state.snapshots = data.snapshots || [];
  state.snapshotsAt = Date.now();
}

// Incremental history: ask from one sample before the newest we hold. If that sample is not
// in the answer the service restarted (or we fell behind its ring): start over from scratch.
async function pollHistory() {
  if (state.lastSeq < 1) {
    replaceHistory((await api("/api/history")).samples || []);
    return;
  }
  const samples = (await api(`/api/history?since=${state.lastSeq - 1}`)).samples || [];
  const anchor = samples.find((x) => x.seq === state.lastSeq);
  if (!anchor || anchor.time !== state.lastTime) {
    replaceHistory((await api("/api/history")).samples || []);
    return;
  }
  for (const sample of samples) if (sample.seq > state.lastSeq) state.samples.push(sample);
  trimAndMark();
}

function replaceHistory(samples) {
  state.samples = samples.slice();
  trimAndMark();
}

function trimAndMark() {
  if (state.samples.length > MAX_SAMPLES) state.samples.splice(0, state.samples.length - MAX_SAMPLES);
  const last = state.samples[state.samples.length - 1];
  state.lastSeq = last ? last.seq : -1;
  state.lastTime = last ? last.time : null;
}

// -- rendering ------------------------------------------------------------------------------

function render() {
  renderConnection();
  renderBanner();
  drawMetricChart($("#metric-chart"), state);
  const throughput = drawSmallChart($("#throughput-chart"), state.samples, "events_per_second", fmtRate, "events/s", 0);
  $("#tp-now").textContent = throughput == null ? "" : `${fmtRate(throughput)} events/s`;
  const lag = drawSmallChart($("#lag-chart"), state.samples, "lag", fmtInt, "messages", 1);
  $("#lag-now").textContent = lag == null ? "" : `${fmtInt(lag)} messages behind`;
  renderJournal($("#journal"), state.decisions);
  renderAlarms($("#alarms-body"), state.alarms);
  const st = state.status;
  renderSnapshots($("#snapshots-body"), $("#snap-metric-head"), state.snapshots,
    { live: st?.model || null, restored: st?.quarantine?.restored || null },
    { pin, rollback: askRollback });
}

function renderConnection() {
  const el = $("#connection");
  const c = state.connection;
  if (!c) return;
  el.className = `connection ${c.ok ? "" : "bad"}`;
  el.textContent = c.ok ? `live · updated ${fmtClock(c.at)}` : `not updating: ${c.message}`;
}

function lastSampleWith(field) {
  for (let i = state.samples.length - 1; i >= 0; i--) {
    if (state.samples[i][field] != null) return state.samples[i];
  }
  return null;
}

function renderBanner() {
  const st = state.status;
  const mode = st ? st.mode : "unknown";
  const banner = $("#banner");
  banner.className = `banner state-${mode}`;
  banner.dataset.state = mode;
  const word = $("#state-label");
  if (word.textContent !== mode) word.textContent = st ? mode : "unknown";
  $("#state-meaning").textContent = st
    ? (MODE_MEANING[mode] || MODE_MEANING.unknown)(st)
    : "Enter the admin token at the top right to load the service's state.";

  const alert = $("#alert-text");
  alert.hidden = !(st && st.alert);
  alert.textContent = st && st.alert ? `Alert: ${st.alert}` : "";

  const d = st?.last_decision || state.decisions[0] || null;
  $("#state-reason").textContent = d ? d.reason : st ? "No decision yet: the guard has not intervened." : "–";
  $("#state-when").textContent = d
    ? `${d.action} (${d.trigger === "manual" ? "by an operator" : "automatic"}), ${d.source} → ${d.target}, ` +
      `at event ${fmtInt(d.at)}, ${fmtClock(d.time)} (${fmtAgo(d.time)})`
    : "";

  const tp = lastSampleWith("events_per_second");
  const lag = lastSampleWith("lag");
  const events = $("#fig-events");
  events.textContent = fmtInt(st?.events);
  events.dataset.value = st ? String(st.events) : "";
  $("#fig-throughput").textContent = tp ? `${fmtRate(tp.events_per_second)} ev/s` : "–";
  $("#fig-lag").textContent = lag ? fmtInt(lag.lag) : "–";
  const metricName = st?.metric?.name || "metric";
  $("#fig-metric-name").textContent = `Live ${metricName} (rolling)`;
  $("#fig-metric").textContent = fmtMetric(st?.metric?.rolling);
  $("#fig-candidate").textContent = st?.candidate_metric != null
    ? fmtMetric(st.candidate_metric)
    : st?.quarantine ? "no labels yet" : st ? "none" : "–";
  $("#fig-learned").textContent = st ? `${fmtInt(st.learned)} / ${fmtInt(st.labeled)}` : "–";
  $("#fig-model").textContent = st?.model || "–";
  $("#fig-invalid").textContent = st ? fmtInt(Object.values(st.invalid || {}).reduce((a, b) => a + b, 0)) : "–";

  const hasCandidate = Boolean(st && (st.quarantine || st.candidate_metric != null));
  setButton("#pause-button", st && mode !== "paused", "Stop learning; only an operator resumes it", "already paused");
  setButton("#resume-button", st && mode !== "learning", "Learn again with the live model", "already learning");
  setButton("#promote-button", hasCandidate, "Make the shadow candidate the live model and resume learning",
    "no candidate model: one exists only in quarantine");
}

function setButton(selector, enabled, why, whyNot) {
  const button = $(selector);
  button.disabled = !enabled;
  button.title = enabled ? why : `Unavailable: ${whyNot}`;
}

// -- operator actions -----------------------------------------------------------------------

function requireToken() {
  if (state.token) return true;
  setAuthProblem("Enter the admin token to act on the service.");
  $("#token-input").focus();
  return false;
}

function say(message, bad = false) {
  const el = $("#action-message");
  el.hidden = false;
  el.className = `action-message ${bad ? "bad" : ""}`;
  el.textContent = message;
}

function describeDecision(d) {
  return `${d.action} (${d.trigger}), ${d.source} → ${d.target}: ${d.reason}.`;
}

async function act(label, path, body) {
  if (!requireToken()) return null;
  try {
    const result = await api(path, { method: "POST", body });
    await refreshSnapshots().catch(() => {});
    poll();
    return result;
  } catch (exc) {
    say(`${label} failed${exc.status ? ` (HTTP ${exc.status})` : ""}: ${exc.message}`, true);
    return null;
  }
}

function openDialog(dialog) {
  return new Promise((resolve) => {
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

async function askRollback(snap) {
  if (!requireToken()) return;
  const metric = snap.metric?.rolling != null ? `, rolling ${snap.metric.name} ${fmtMetric(snap.metric.rolling)}` : "";
  $("#rollback-text").textContent =
    `The live model will be replaced by the model of snapshot ${snap.id} (${snap.reason}, taken at event ` +
    `${fmtInt(snap.events)}, ${fmtClock(snap.created)}, while ${snap.mode || "unknown"}${metric}).`;
  $("#rollback-resume").checked = false;
  if (!(await openDialog($("#rollback-dialog")))) return;
  const resume = $("#rollback-resume").checked;
  const d = await act("Rollback", "/api/rollback", { to: snap.id, resume });
  if (d) {
    say(`Rolled back to ${snap.id} (${d.source} → ${d.target}). ` +
      (resume ? "Learning resumed with the restored model." : "Learning is paused: press “Resume learning” when ready."));
  }
}

async function pin(snap) {
  const pinned = !snap.pinned;
  if (await act(pinned ? "Pin" : "Unpin", `/api/snapshots/${encodeURIComponent(snap.id)}/pin`, { pinned })) {
    say(`${snap.id} ${pinned ? "pinned: retention keeps it" : "unpinned"}.`);
  }
}

async function command(name) {
  if (name === "promote") {
    if (!requireToken()) return;
    $("#confirm-title").textContent = "Promote the candidate?";
    $("#confirm-text").textContent = "The candidate model, which learned the new data in shadow, becomes the live " +
      "model and learning resumes. Use this when the world really changed.";
    $("#confirm-ok").textContent = "Promote";
    if (!(await openDialog($("#confirm-dialog")))) return;
  }
  const d = await act(name[0].toUpperCase() + name.slice(1), `/api/${name}`);
  if (d) say(`Done: ${describeDecision(d)}`);
}

// -- start ----------------------------------------------------------------------------------

function start() {
  const input = $("#token-input");
  input.value = state.token;
  setAuthProblem(null);
  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = input.value.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
    else sessionStorage.removeItem(TOKEN_KEY);
    setAuthProblem(null);
    state.lastSeq = -1;
    poll();
  });
  for (const button of document.querySelectorAll("[data-command]")) {
    button.addEventListener("click", () => command(button.dataset.command));
  }
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 150);
  });
  poll();
}

start();
