// The job page: parameters, summary, the sortable per-prompt table, the overview plot and the
// empirical CDFs of the rows on the current page, downloads.
"use strict";

const PAGE_ROWS = 50;
const ECDF_ROWS = 24; // CDF plots for the first rows of the page
const COLUMNS = [
  { key: "id", label: "prompt", text: true },
  { key: "n", label: "n used" },
  { key: "greedy", label: "greedy score" },
  { key: "mean", label: "mean" },
  { key: "k", label: "draws scoring 1" },
  { key: "p_lower", label: "P(leak) lower" },
  { key: "p_upper", label: "P(leak) upper" },
  { key: "mu_upper", label: "M_mu upper" },
  { key: "sd_upper", label: "M_sigma upper" },
  { key: "ed_upper", label: "M_ED upper" },
  { key: "verdict", label: "verdict", text: true },
];

const job = {
  id: document.body.dataset.job,
  spec: null,
  results: null,
  rows: [], // {c: cells, p: PromptResult, verdict, order}
  sort: { key: null, dir: 1 },
  page: 0,
  onlyHidden: false,
  ecdfToken: 0,
};

function kvTable(table, pairs) {
  Ui.clear(table);
  for (const [name, value] of pairs)
    table.append(Ui.el("tr", {}, Ui.el("th", { class: "l" }, name), Ui.el("td", { class: "l" }, value)));
}

function scorerLabel(s) {
  const pattern = s.pattern ? ` /${s.pattern}/` : "";
  const judge = s.judge_model ? ` (judge ${s.judge_model})` : "";
  return (s.name || "") + pattern + judge;
}

function showParams(view) {
  const s = job.spec;
  const p = s.sampling;
  const pairs = [
    ["job", job.id],
    ["model", s.model],
    ["status", view.status + (job.results && job.results.partial ? " (partial)" : "")],
    ["prompts", s.prompts.length],
    ["draws per prompt (n)", s.stopping ? `adaptive, at most ${s.stopping.max_n}` : p.n],
    ["temperature / top_p / top_k", `${p.temperature} / ${p.top_p} / ${p.top_k}`],
    ["max_tokens", p.max_tokens],
    ["seed", p.seed === null || p.seed === undefined ? "none" : p.seed],
    ["scorer", scorerLabel(s.scorer)],
    ["alpha", `${s.alpha} (each bound holds with probability ≥ ${1 - s.alpha} per prompt)`],
    ["family", s.family],
    ["greedy draw", s.greedy ? "yes" : "no"],
    ["created", new Date(view.created_at * 1000).toLocaleString()],
  ];
  if (s.stopping) pairs.push(["stopping", JSON.stringify(s.stopping)]);
  if (view.error) pairs.push(["error", `${view.error.code}: ${view.error.message}`]);
  kvTable(document.getElementById("params"), pairs);
}

function showSummary() {
  const s = job.results.summary;
  const pairs = [
    ["prompts", s.prompts],
    ["mean of per-prompt means", Ui.fmt(s.mean_of_means)],
    ["largest M_mu upper bound", Ui.fmt(s.max_expectation_upper)],
    ["greedy scores 0, some draw scored > 0", s.greedy_zero_but_sampled_positive],
    ["a full-score draw proven possible (P(leak) lower > 0)", s.full_score_proven],
    ["greedy says forgotten, sampling proves a leak", job.rows.filter((r) => hiddenLeak(r.c)).length],
  ];
  if (s.decisions) pairs.push(["decisions", Object.entries(s.decisions).map(([k, v]) => `${k}: ${v}`).join(", ")]);
  if (s.leaks) pairs.push([`leaks (${s.leaks.method})`, s.leaks.statement]);
  kvTable(document.getElementById("summary"), pairs);
  document.getElementById("assumptions").textContent = job.results.assumptions +
    " The shaded band is F_n(x) ± ε: with probability ≥ 1 − α it contains the true CDF everywhere" +
    (job.spec.stopping ? " (time-uniform band: valid at the data-dependent n used)." : " (DKW).") +
    " P(leak) is P(score = 1); its bounds are one-sided Clopper-Pearson at 1 − α.";
}

function showDownloads(view) {
  const box = Ui.clear(document.getElementById("downloads"));
  const base = apiJob(job.id);
  const items = [["samples.jsonl", base + "/samples.jsonl", job.id + "-samples.jsonl"]];
  if (job.results) {
    items.push(
      ["draws.parquet", base + "/export.parquet", job.id + "-draws.parquet"],
      ["results.csv", base + "/results.csv", job.id + "-results.csv"],
      ["results.parquet", base + "/export.parquet?table=results", job.id + "-results.parquet"],
      ["static report (HTML)", base + "/report", job.id + "-report.html"],
    );
  }
  box.append("Downloads: ");
  for (const [label, path, name] of items) {
    const a = Ui.el("a", { href: path, class: "download", "data-name": name }, label);
    a.addEventListener("click", (event) => {
      event.preventDefault();
      Api.download(path, name).catch(Ui.fail);
    });
    box.append(a, " ");
  }
  if (!job.results) box.append(Ui.el("span", { class: "note" }, `(results and report once the job has ended; now ${view.status})`));
}

function sortedRows() {
  let rows = job.onlyHidden ? job.rows.filter((r) => hiddenLeak(r.c)) : job.rows.slice();
  const { key, dir } = job.sort;
  if (key) {
    const value = (r) => (key === "verdict" ? r.verdict : r.c[key]);
    rows.sort((a, b) => {
      const x = value(a);
      const y = value(b);
      // Missing values sort last either way.
      if (x === null || x === undefined) return y === null || y === undefined ? a.order - b.order : 1;
      if (y === null || y === undefined) return -1;
      const cmp = typeof x === "string" ? x.localeCompare(y) : x - y;
      return cmp !== 0 ? dir * cmp : a.order - b.order;
    });
  }
  return rows;
}

function header() {
  const tr = Ui.el("tr");
  for (const col of COLUMNS) {
    const active = job.sort.key === col.key;
    const button = Ui.el("button", { type: "button", class: "sort", "data-key": col.key }, col.label,
      active ? (job.sort.dir > 0 ? " ▲" : " ▼") : "");
    button.addEventListener("click", () => {
      job.sort = { key: col.key, dir: active ? -job.sort.dir : col.text ? 1 : -1 };
      job.page = 0;
      render();
    });
    tr.append(Ui.el("th", { class: col.text ? "l" : null, "aria-sort": active ? (job.sort.dir > 0 ? "ascending" : "descending") : "none" }, button));
  }
  Ui.clear(document.querySelector("#prompts thead")).append(tr);
}

function render() {
  header();
  const rows = sortedRows();
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  job.page = Math.min(job.page, pages - 1);
  const shown = rows.slice(job.page * PAGE_ROWS, (job.page + 1) * PAGE_ROWS);
  const body = document.querySelector("#prompts tbody");
  const frag = document.createDocumentFragment();
  for (const r of shown) {
    const tr = Ui.el("tr", { "data-id": r.c.id, class: hiddenLeak(r.c) ? "hidden-leak" : null });
    for (const col of COLUMNS) {
      let cell;
      if (col.key === "id") cell = Ui.el("a", { href: promptUrl(job.id, r.c.id) }, r.c.id);
      else if (col.key === "verdict") cell = r.verdict;
      else if (col.key === "n" || col.key === "k") cell = r.c[col.key] === null ? "–" : r.c[col.key];
      else cell = Ui.fmt(r.c[col.key]);
      tr.append(Ui.el("td", { class: col.text ? "l" : null, "data-key": col.key }, cell));
    }
    frag.append(tr);
  }
  Ui.clear(body).append(frag);
  document.getElementById("row-count").textContent = `${rows.length} of ${job.rows.length} prompts`;
  document.getElementById("rows-page").textContent = `page ${job.page + 1} of ${pages}`;
  document.getElementById("rows-prev").disabled = job.page === 0;
  document.getElementById("rows-next").disabled = job.page >= pages - 1;
  const box = Ui.clear(document.getElementById("overview"));
  box.append(Plots.overview(rows.map((r) => r.c), Math.max(box.clientWidth - 4, rows.length * 4), (id) => {
    location.href = promptUrl(job.id, id);
  }));
  drawEcdfs(shown.slice(0, ECDF_ROWS)).catch(Ui.fail);
}

async function drawEcdfs(rows) {
  const token = ++job.ecdfToken;
  const grid = Ui.clear(document.getElementById("ecdfs"));
  delete grid.dataset.drawn;
  if (!rows.length) return;
  // One read for the plots of the page (the scores route takes up to 100 ids), cut where
  // long ids would make the URL longer than servers accept (~8 KB).
  const batches = [[]];
  let length = 0;
  for (const r of rows) {
    const part = encodeURIComponent(r.c.id).length + 11;
    if (length + part > 6000 && batches[batches.length - 1].length) {
      batches.push([]);
      length = 0;
    }
    batches[batches.length - 1].push(r);
    length += part;
  }
  const pages = await Promise.all(batches.map((batch) => {
    const q = new URLSearchParams();
    for (const r of batch) q.append("prompt_id", r.c.id);
    return Api.get(apiJob(job.id) + "/scores?" + q.toString());
  }));
  if (token !== job.ecdfToken) return;
  pages.flatMap((page) => page.prompts).forEach((scores, i) => {
    const r = rows[i];
    const link = Ui.el("a", { href: promptUrl(job.id, r.c.id) });
    link.append(Plots.ecdf(scores.scores, scores.band_epsilon, r.c.greedy, r.c.id));
    grid.append(Ui.el("figure", { class: "ecdf-slot", "data-id": r.c.id }, link));
  });
  grid.dataset.drawn = String(rows.length);
}

async function load() {
  const base = apiJob(job.id);
  // The three reads at once; results answer 409 until the job has ended.
  const [view, spec, results] = await Promise.all([
    Api.get(base),
    Api.get(base + "/spec"),
    Api.get(base + "/results").catch((err) => {
      if (err instanceof ApiError && err.status === 409) return null;
      throw err;
    }),
  ]);
  job.spec = spec;
  job.results = results;
  showParams(view);
  showDownloads(view);
  if (!job.results) {
    const p = view.progress;
    Ui.message(`The job is ${view.status} (${p.samples_done} / ${p.samples_total} draws): its table and plots appear when it ends.`, "info");
    if (!["succeeded", "failed", "cancelled"].includes(view.status)) setTimeout(Ui.run, 3000);
    return;
  }
  job.rows = job.results.prompts.map((p, order) => {
    const c = promptCells(p);
    return { c, p, order, verdict: promptVerdict(p, c) };
  });
  showSummary();
  render();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("f-hidden-leak").addEventListener("change", (event) => {
    job.onlyHidden = event.target.checked;
    job.page = 0;
    render();
  });
  document.getElementById("rows-prev").addEventListener("click", () => { job.page -= 1; render(); });
  document.getElementById("rows-next").addEventListener("click", () => { job.page += 1; render(); });
  Ui.start(load);
});
