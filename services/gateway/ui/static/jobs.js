// The jobs page: the tenant's jobs with live progress, filtered by status and model.
"use strict";

const LIVE_STREAMS = 3; // browsers allow ~6 connections per host; the rest of the jobs poll
const POLL_MS = 2000;

const state = { after: null, rows: new Map(), streams: new Map(), timer: null };

function filters() {
  return {
    status: document.getElementById("f-status").value,
    model: document.getElementById("f-model").value,
  };
}

function progressBar(job) {
  const p = job.progress;
  const frac = p.samples_total > 0 ? Math.min(1, p.samples_done / p.samples_total) : 0;
  const bar = Ui.el("progress", { max: 1, value: frac.toFixed(4) });
  const label = Ui.el("span", { class: "progress-label" }, `${p.samples_done} / ${p.samples_total}`);
  return Ui.el("span", { class: "progress" }, bar, " ", label);
}

function nCell(job) {
  if (job.adaptive) return "adaptive";
  return job.prompts > 0 ? String(Math.round(job.progress.samples_total / job.prompts)) : "–";
}

function jobRow(job) {
  const link = Ui.el("a", { href: jobUrl(job.id) }, job.id);
  const tr = Ui.el(
    "tr",
    { "data-id": job.id, "data-status": job.status },
    Ui.el("td", { class: "l mono" }, link),
    Ui.el("td", { class: "l" }, job.model),
    Ui.el("td", { class: "l status" }, Ui.el("span", { class: "badge " + job.status }, job.status)),
    Ui.el("td", {}, job.prompts),
    Ui.el("td", {}, nCell(job)),
    Ui.el("td", { class: "l" }, progressBar(job)),
    Ui.el("td", { class: "l" }, new Date(job.created_at * 1000).toLocaleString()),
  );
  return tr;
}

function update(job) {
  const old = state.rows.get(job.id);
  if (!old) return;
  const merged = { ...old.job, ...job };
  const tr = jobRow(merged);
  old.tr.replaceWith(tr);
  state.rows.set(job.id, { job: merged, tr });
}

function watch(job) {
  if (job.status === "succeeded" || job.status === "failed" || job.status === "cancelled") return;
  if (state.streams.size >= LIVE_STREAMS || state.streams.has(job.id)) return;
  const abort = new AbortController();
  state.streams.set(job.id, abort);
  Api.stream(apiJob(job.id) + "/events", (name, data) => {
    if (name === "progress" || name === "end") update(data);
  }, abort.signal)
    .catch(() => {}) // the poll below still covers this job
    .finally(() => state.streams.delete(job.id));
}

async function poll() {
  const active = [...state.rows.values()].filter(
    (r) => (r.job.status === "queued" || r.job.status === "running") && !state.streams.has(r.job.id),
  );
  await Promise.all(active.map(async (r) => update(await Api.get(apiJob(r.job.id)))));
  for (const r of state.rows.values()) watch(r.job);
}

async function loadModels() {
  const select = document.getElementById("f-model");
  const chosen = new URLSearchParams(location.search).get("model") || "";
  const names = new Set(chosen ? [chosen] : []);
  for (const m of (await Api.get("/v1/models")).models) names.add(m.name);
  for (const r of state.rows.values()) names.add(r.job.model);
  const known = new Set([...select.options].map((o) => o.value));
  for (const name of [...names].sort()) if (!known.has(name)) select.append(Ui.el("option", { value: name }, name));
  select.value = chosen;
}

async function loadPage(reset) {
  const body = document.querySelector("#jobs tbody");
  if (reset) {
    for (const abort of state.streams.values()) abort.abort();
    state.streams.clear();
    state.rows.clear();
    state.after = null;
    Ui.clear(body);
  }
  const f = filters();
  const q = new URLSearchParams({ limit: "50" });
  if (f.status) q.set("status", f.status);
  if (f.model) q.set("model", f.model);
  if (state.after) q.set("after", state.after);
  const page = await Api.get("/v1/jobs?" + q.toString());
  for (const job of page.jobs) {
    const tr = jobRow(job);
    body.append(tr);
    state.rows.set(job.id, { job, tr });
    watch(job);
  }
  state.after = page.next_after;
  document.getElementById("more").hidden = !page.next_after;
  if (!state.rows.size) body.append(Ui.el("tr", { class: "empty" }, Ui.el("td", { colspan: 7, class: "l" }, "No jobs match.")));
}

async function load() {
  const params = new URLSearchParams(location.search);
  document.getElementById("f-status").value = params.get("status") || "";
  const model = params.get("model") || "";
  const select = document.getElementById("f-model");
  if (model && ![...select.options].some((o) => o.value === model)) select.append(Ui.el("option", { value: model }, model));
  select.value = model;
  await loadPage(true);
  await loadModels();
  if (!state.timer) state.timer = setInterval(() => poll().catch(() => {}), POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["f-status", "f-model"]) {
    document.getElementById(id).addEventListener("change", () => {
      const f = filters();
      const q = new URLSearchParams();
      if (f.status) q.set("status", f.status);
      if (f.model) q.set("model", f.model);
      history.replaceState(null, "", "/ui/jobs" + (q.toString() ? "?" + q.toString() : ""));
      loadPage(true).catch(Ui.fail);
    });
  }
  document.getElementById("more").addEventListener("click", () => loadPage(false).catch(Ui.fail));
  Ui.start(load);
});
