// The prompt page: the prompt, reference, greedy answer, bounds, the score histogram, and every
// draw, grouped by distinct text (sorted by count) or in sampling order, reference words marked.
"use strict";

const PAGE_DRAWS = 50;
const FETCH_DRAWS = 1000; // the samples route's page limit

const view = {
  jobId: document.body.dataset.job,
  promptId: document.body.dataset.prompt,
  draws: [], // {index, text, score}
  groups: [], // {text, count, scores: [min, max], first}
  order: "grouped",
  page: 0,
  words: new Set(),
};

const WORD = /([\p{L}\p{N}]+)/u;

function referenceWords(reference) {
  return new Set((reference.match(/[\p{L}\p{N}]+/gu) || []).map((w) => w.toLowerCase()));
}

// The text as nodes: words of the reference inside <mark>, everything else plain text nodes.
function highlighted(text) {
  const span = Ui.el("span", { class: "draw-text" });
  text.split(WORD).forEach((part, i) => {
    if (!part) return;
    if (i % 2 === 1 && view.words.has(part.toLowerCase())) span.append(Ui.el("mark", {}, part));
    else span.append(document.createTextNode(part));
  });
  return span;
}

function boundsPairs(p) {
  const pairs = [];
  if (p.sequential) {
    const q = p.sequential;
    pairs.push(
      ["draws used (stopping time)", q.n_used],
      ["decision", `${q.decision} (${q.reason})`],
      [`${q.target} (anytime-valid, two-sided)`, `[${Ui.fmt(q.lower)}, ${Ui.fmt(q.upper)}]`],
      ["mean", Ui.fmt(q.mean)],
      ["E[X] (anytime)", `[${Ui.fmt(q.anytime.expectation.lower)}, ${Ui.fmt(q.anytime.expectation.upper)}]`],
      ["M_sigma upper (anytime)", Ui.fmt(q.anytime.std.upper)],
      ["M_ED upper (anytime)", Ui.fmt(q.anytime.ed.upper)],
    );
    return pairs;
  }
  const b = p.bounds;
  const f = p.full_score;
  pairs.push(
    ["draws (n)", p.n],
    ["mean score", Ui.fmt(b.mean)],
    ["draws scoring 1 (k)", f.k],
    ["P(leak) = P(score = 1), one-sided bounds", `lower ${Ui.fmt(f.lower)}, upper ${Ui.fmt(f.upper)}`],
    ["E[X] (M_mu), one-sided bounds", `lower ${Ui.fmt(b.expectation.lower)}, upper ${Ui.fmt(b.expectation.upper)}`],
    ["E[X], two-sided betting interval", `[${Ui.fmt(b.betting.lower)}, ${Ui.fmt(b.betting.upper)}]`],
    ["sd(X) upper (M_sigma)", Ui.fmt(b.std.upper)],
    [`E[X] + ${b.ed.lambda} sd(X) upper (M_ED)`, Ui.fmt(b.ed.upper)],
  );
  if (b.leak) pairs.push([`P(score ≥ ${b.leak.threshold})`, `${b.leak.c} draws; lower ${Ui.fmt(b.leak.lower)}, upper ${Ui.fmt(b.leak.upper)}`]);
  for (const lk of b.leak_at_k || []) pairs.push([`leak@${lk.k}`, `lower ${Ui.fmt(lk.lower)}, upper ${Ui.fmt(lk.upper)}`]);
  return pairs;
}

function promptText(spec) {
  if (spec.prompt) return spec.prompt;
  return (spec.messages || []).map((m) => `[${m.role}] ${m.content}`).join("\n");
}

function group(draws) {
  const byText = new Map();
  for (const d of draws) {
    let g = byText.get(d.text);
    if (!g) {
      g = { text: d.text, count: 0, min: Infinity, max: -Infinity, first: d.index };
      byText.set(d.text, g);
    }
    g.count += 1;
    if (d.score !== null) {
      g.min = Math.min(g.min, d.score);
      g.max = Math.max(g.max, d.score);
    }
  }
  return [...byText.values()].sort((a, b) => b.count - a.count || a.first - b.first);
}

function scoreText(min, max) {
  if (min === Infinity) return "–";
  return min === max ? Ui.fmt(min) : `${Ui.fmt(min)}–${Ui.fmt(max)}`;
}

function renderDraws() {
  const grouped = view.order === "grouped";
  const items = grouped ? view.groups : view.draws;
  const pages = Math.max(1, Math.ceil(items.length / PAGE_DRAWS));
  view.page = Math.max(0, Math.min(view.page, pages - 1));
  const head = grouped ? ["count", "score", "first draw", "text"] : ["draw", "score", "text"];
  const tr = Ui.el("tr");
  head.forEach((h, i) => tr.append(Ui.el("th", { class: i === head.length - 1 ? "l" : null }, h)));
  Ui.clear(document.querySelector("#draws thead")).append(tr);
  const frag = document.createDocumentFragment();
  for (const item of items.slice(view.page * PAGE_DRAWS, (view.page + 1) * PAGE_DRAWS)) {
    const cells = grouped
      ? [Ui.el("td", { class: "count" }, item.count), Ui.el("td", {}, scoreText(item.min, item.max)), Ui.el("td", {}, item.first)]
      : [Ui.el("td", {}, item.index), Ui.el("td", {}, Ui.fmt(item.score))];
    frag.append(Ui.el("tr", { class: grouped ? "group" : "draw" }, ...cells, Ui.el("td", { class: "l text" }, highlighted(item.text))));
  }
  Ui.clear(document.querySelector("#draws tbody")).append(frag);
  document.getElementById("draws-page").textContent = `page ${view.page + 1} of ${pages}`;
  document.getElementById("draws-prev").disabled = view.page === 0;
  document.getElementById("draws-next").disabled = view.page >= pages - 1;
  document.getElementById("draw-count").textContent =
    `${view.draws.length} draws, ${view.groups.length} distinct texts`;
}

async function loadDraws(base) {
  const draws = [];
  let rendered = null;
  for (let offset = 0; ; offset += FETCH_DRAWS) {
    const q = new URLSearchParams({ prompt_id: view.promptId, offset: String(offset), limit: String(FETCH_DRAWS) });
    const page = await Api.get(base + "/samples?" + q.toString());
    rendered = rendered || page.rendered_prompt;
    draws.push(...page.samples);
    if (page.samples.length === 0 || draws.length >= page.total) break;
  }
  return { draws, rendered };
}

async function load() {
  const base = apiJob(view.jobId);
  document.getElementById("crumb-job").href = jobUrl(view.jobId);
  const spec = await Api.get(base + "/spec");
  const specPrompt = spec.prompts.find((p) => p.id === view.promptId);
  if (!specPrompt) throw new ApiError(404, "not_found", `job ${view.jobId} has no prompt ${view.promptId}`);
  const [results, { draws, rendered }] = await Promise.all([
    Api.get(base + "/results").catch((err) => {
      if (err instanceof ApiError && err.status === 409) return null;
      throw err;
    }),
    loadDraws(base),
  ]);
  const shown = promptText(specPrompt);
  document.getElementById("prompt-text").textContent =
    specPrompt.messages && rendered ? `${shown}\n\n— rendered with the model's chat template —\n${rendered}` : shown;
  document.getElementById("reference").textContent = specPrompt.reference;
  view.words = referenceWords(specPrompt.reference);
  const result = results ? results.prompts.find((p) => p.id === view.promptId) : null;
  const greedy = document.getElementById("greedy");
  Ui.clear(greedy);
  if (result && result.greedy) greedy.append(highlighted(result.greedy.text), Ui.el("span", { class: "note" }, `  (score ${Ui.fmt(result.greedy.score)})`));
  else greedy.textContent = spec.greedy ? "(not yet available)" : "(the job made no greedy draw)";
  const table = Ui.clear(document.getElementById("bounds"));
  if (result) {
    for (const [name, value] of boundsPairs(result))
      table.append(Ui.el("tr", {}, Ui.el("th", { class: "l" }, name), Ui.el("td", { class: "l" }, value)));
    table.append(Ui.el("tr", {}, Ui.el("th", { class: "l" }, "alpha"), Ui.el("td", { class: "l" }, `${results.alpha}: each bound holds with probability ≥ ${1 - results.alpha}`)));
    document.getElementById("assumptions").textContent = results.assumptions;
  } else {
    table.append(Ui.el("tr", {}, Ui.el("td", { class: "l" }, "Bounds appear when the job has ended.")));
  }
  view.draws = draws;
  view.groups = group(draws);
  const scores = draws.map((d) => d.score).filter((s) => s !== null);
  Ui.clear(document.getElementById("histogram")).append(Plots.histogram(scores, 10));
  renderDraws();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const radio of document.querySelectorAll('input[name="order"]')) {
    radio.addEventListener("change", (event) => {
      view.order = event.target.value;
      view.page = 0;
      renderDraws();
    });
  }
  document.getElementById("draws-prev").addEventListener("click", () => { view.page -= 1; renderDraws(); });
  document.getElementById("draws-next").addEventListener("click", () => { view.page += 1; renderDraws(); });
  Ui.start(load);
});
