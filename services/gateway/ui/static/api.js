// The JSON API from the browser: the key in sessionStorage, one error message area, and DOM
// helpers that only ever set untrusted text through textContent.
"use strict";

const KEY_NAME = "probeval.key";

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const Api = {
  key() {
    return sessionStorage.getItem(KEY_NAME) || "";
  },

  headers() {
    const key = Api.key();
    return key ? { Authorization: "Bearer " + key } : {};
  },

  async get(path) {
    const resp = await fetch(path, { headers: Api.headers(), cache: "no-store" });
    if (!resp.ok) throw await Api.error(resp);
    return resp.json();
  },

  async error(resp) {
    let code = "http_" + resp.status;
    let message = resp.statusText || "request failed";
    try {
      const body = await resp.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      }
    } catch (_) {
      // not the JSON error shape: keep the status line
    }
    return new ApiError(resp.status, code, message);
  },

  // Downloads go through fetch so that they carry the key; the file is handed to the browser
  // as a blob with the name the gateway chose.
  async download(path, fallbackName) {
    const resp = await fetch(path, { headers: Api.headers(), cache: "no-store" });
    if (!resp.ok) throw await Api.error(resp);
    const blob = await resp.blob();
    const disposition = resp.headers.get("content-disposition") || "";
    const match = /filename="([^"]+)"/.exec(disposition);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = match ? match[1] : fallbackName;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  },

  // Server-Sent Events over fetch (EventSource cannot send an Authorization header).
  // Calls onEvent(name, data) per event; resolves when the stream ends.
  async stream(path, onEvent, signal) {
    const resp = await fetch(path, {
      headers: { ...Api.headers(), Accept: "text/event-stream" },
      cache: "no-store",
      signal,
    });
    if (!resp.ok) throw await Api.error(resp);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(name, JSON.parse(data.join("\n")));
      }
    }
  },
};

const Ui = {
  // el("td", {class: "l"}, "text" | Node, ...): text children become text nodes, never markup.
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  fmt(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    return Number(x).toFixed(digits);
  },

  clear(node) {
    node.replaceChildren();
    return node;
  },

  message(text, kind) {
    const box = document.getElementById("message");
    box.textContent = text;
    box.className = kind || "error";
    box.hidden = !text;
  },

  // What a failed read shows. On 401 every data area is emptied: a refused key sees nothing.
  fail(err) {
    if (err instanceof ApiError && err.status === 401) {
      for (const node of document.querySelectorAll("#content tbody, #content .plot, #content .grid, #content .kv, #content pre, #downloads"))
        node.replaceChildren();
      Ui.message(
        Api.key()
          ? "The API key was refused (" + err.message + "). Enter a valid key above; nothing is shown until then."
          : "This gateway needs an API key: enter it above. Nothing is shown until then.",
        "auth",
      );
    } else if (err instanceof ApiError && err.status === 404) {
      Ui.message("Not found: " + err.message + " (or it belongs to another tenant).", "error");
    } else {
      Ui.message("Could not load: " + (err && err.message ? err.message : String(err)), "error");
    }
    document.body.dataset.ready = "error";
  },

  // The key form in the header; `load` is the page's loader, re-run when the key changes.
  start(load) {
    const form = document.getElementById("key-form");
    const input = document.getElementById("key-input");
    const run = () => {
      Ui.message("");
      document.body.dataset.ready = "loading";
      Promise.resolve()
        .then(load)
        .then(() => {
          document.body.dataset.ready = "yes";
        })
        .catch(Ui.fail);
    };
    Ui.run = run;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) sessionStorage.setItem(KEY_NAME, key);
      input.value = "";
      run();
    });
    document.getElementById("key-forget").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_NAME);
      window.location.reload();
    });
    input.placeholder = Api.key() ? "a key is set for this tab" : "kept in this tab only";
    run();
  },
};

// The numbers one table row shows, for a fixed-n or an adaptive prompt (as the report has them).
function promptCells(p) {
  const greedy = p.greedy ? p.greedy.score : null;
  if (p.sequential) {
    const q = p.sequential;
    const full = q.target === "p_full";
    return {
      id: p.id,
      n: q.n_used,
      greedy,
      mean: q.mean,
      k: null,
      p_lower: full ? q.lower : null,
      p_upper: full ? q.upper : null,
      mu_lower: q.anytime.expectation.lower,
      mu_upper: q.anytime.expectation.upper,
      sd_upper: q.anytime.std.upper,
      ed_upper: q.anytime.ed.upper,
    };
  }
  const b = p.bounds;
  const f = p.full_score;
  return {
    id: p.id,
    n: p.n,
    greedy,
    mean: b.mean,
    k: f.k,
    p_lower: f.lower,
    p_upper: f.upper,
    mu_lower: b.expectation.lower,
    mu_upper: b.expectation.upper,
    sd_upper: b.std.upper,
    ed_upper: b.ed.upper,
  };
}

// shared/verdicts.py, worded the same.
function promptVerdict(p, c) {
  if (p.sequential) {
    const q = p.sequential;
    return `stopped at n = ${q.n_used}: ${q.decision} (${q.reason}); ${q.target} in [${Ui.fmt(q.lower)}, ${Ui.fmt(q.upper)}]`;
  }
  if (c.p_lower > 0) return c.greedy === 0 ? "LEAKS: greedy hides it, sampling proves it" : "knows the answer";
  if (c.greedy === 0) return `looks forgotten; P(leak) <= ${Ui.fmt(c.p_upper)}`;
  if (c.mean === 0) return `no draw scored above 0; P(leak) <= ${Ui.fmt(c.p_upper)}`;
  if (c.greedy === null) return "scores vary; no full answer proven";
  return "greedy partly right";
}

function hiddenLeak(c) {
  return c.greedy === 0 && c.p_lower !== null && c.p_lower > 0;
}

function jobUrl(jobId) {
  return "/ui/jobs/" + encodeURIComponent(jobId);
}

function promptUrl(jobId, promptId) {
  return jobUrl(jobId) + "/prompt?id=" + encodeURIComponent(promptId);
}

function apiJob(jobId) {
  return "/v1/jobs/" + encodeURIComponent(jobId);
}
