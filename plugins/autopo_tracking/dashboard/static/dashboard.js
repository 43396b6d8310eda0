// The dashboard's few behaviours: refresh the Today view, show a file's details, retry a failed file
// through Airflow's own clearTaskInstances (a preview first). Plain JavaScript, no build step.
"use strict";

const BASE = document.body.dataset.base;
const AIRFLOW = document.body.dataset.airflowBase;
const RETRYABLE = new Set((document.body.dataset.retryable || "").split(" ").filter(Boolean));
const FINAL = new Set(["completed", "skipped", "retained", "failed", "unrouted"]);

async function call(method, url, body) {
  // Same origin: the Airflow UI's login cookie goes with it. JSON bodies make a cross-site
  // request need a CORS preflight, which Airflow does not grant.
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: body === undefined ? { Accept: "application/json" } : { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text.slice(0, 300) }; }
  if (!response.ok) {
    const detail = data && data.detail !== undefined ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : response.statusText;
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "–")));
  return node;
}

function details(job) {
  const rows = [
    ["Pipeline / date", `${job.pipeline} ${job.date}`],
    ["Store", job.store_id || "–"],
    ["File", job.file_name],
    ["Status", job.status],
    ["Checksum", job.checksum || "–"],
    ["Size", job.size_bytes === null ? "–" : `${job.size_bytes.toLocaleString()} bytes`],
    ["Rows in / out / rejected", `${job.rows_in.toLocaleString()} / ${job.rows_out.toLocaleString()} / ${job.rows_rejected.toLocaleString()}`],
    ["Attempts", job.attempts],
    ["Started", job.started_at || "–"],
    ["Ended", job.completed_at || "–"],
  ];
  const list = el("dl", { class: "file-details" });
  for (const [name, value] of rows) list.append(el("dt", {}, name), el("dd", {}, value));
  list.append(el("dt", {}, "Error"), el("dd", { class: job.error ? "error-text file-error" : "file-error" }, job.error || "none"));
  if (job.log) {
    const link = el("a", { href: `${AIRFLOW}/${job.log.url}`, target: "_top", class: "log-link" }, `${job.log.task_id}[${job.log.map_index}] in ${job.log.run_id}`);
    list.append(el("dt", {}, "Task log"), el("dd", {}, link));
  }
  return list;
}

// Which file the dialog shows: bumped on every opening and on close, so that a lookup or a retry's
// watch that began for another file leaves the dialog alone.
let shown = 0;

async function openFile(id) {
  const ticket = ++shown;
  const dialog = document.getElementById("file-dialog");
  const body = document.getElementById("file-dialog-body");
  const area = document.getElementById("retry-area");
  body.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  area.replaceChildren();
  if (!dialog.open) dialog.showModal();
  try {
    const job = await call("GET", `${BASE}/api/v1/file-jobs/${id}`);
    if (ticket !== shown) return;
    document.getElementById("file-dialog-title").textContent = job.file_name;
    body.replaceChildren(details(job));
    if (job.status === "failed" && job.map_index !== null && RETRYABLE.has(job.pipeline)) {
      area.replaceChildren(el("button", { class: "retry", "data-retry": job.id }, "Retry…"));
    }
  } catch (error) {
    if (ticket === shown) body.replaceChildren(el("p", { class: "notice bad" }, error.message));
  }
}

function lookOf(status) {
  // The grid's legend shows each status as the server draws it (cells.LOOKS): symbol and letter, label.
  const item = document.querySelector(`.legend [data-status="${CSS.escape(status)}"]`);
  if (!item) return { text: status.slice(0, 1).toUpperCase(), label: status };
  return { text: item.querySelector(".cell").textContent, label: item.querySelector(".label").textContent };
}

function cellTitle(node, status) {
  // "STORE-002 2024-12-04: failed: the file's rows are not in the snapshot (2 files)", from the cell's row
  // and column headers and the legend: the server sends each cell bare (a grid may have 14,400 of them).
  const row = node.closest("tr[data-store]");
  const header = row && row.closest("table").tHead.rows[0].cells[node.closest("td").cellIndex];
  const files = node.dataset.files ? ` (${node.dataset.files} files)` : "";
  return `${row ? row.dataset.store : ""} ${header ? header.dataset.date : ""}: ${lookOf(status).label}${files}`;
}

function statusOf(node) {
  const match = node.className.match(/\bcell-(\w+)/);
  return match ? match[1] : "";
}

function markCell(job) {
  const look = lookOf(job.status);
  for (const node of document.querySelectorAll(`[data-file-job="${job.id}"].cell`)) {
    node.className = `cell cell-${job.status}`;
    node.textContent = look.text;
    node.setAttribute("aria-label", look.label.split(":")[0]);
    node.title = cellTitle(node, job.status);
  }
}

async function watch(job, area, ticket, clearedAt) {
  // The tracking listeners write the file's new status when its task runs again: its attempt counts
  // up, or (a file reused, or failed before its task started) it ends with a later time.
  const before = job.attempts;
  for (let n = 0; n < 200; n++) {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    let now;
    try { now = await call("GET", `${BASE}/api/v1/file-jobs/${job.id}`); } catch (error) { continue; }
    markCell(now);
    if (ticket !== shown) continue;  // the dialog shows another file, or none: only the grid follows
    document.getElementById("file-dialog-body").replaceChildren(details(now));
    const endedSince = now.completed_at !== null && Date.parse(now.completed_at) >= clearedAt;
    if (FINAL.has(now.status) && (now.attempts > before || endedSince)) {
      area.replaceChildren(el("p", { class: now.status === "failed" ? "notice bad retry-result" : "notice retry-result" }, `The retry ended: ${now.status}.`));
      return;
    }
  }
  if (ticket === shown) {
    area.replaceChildren(el("p", { class: "notice bad retry-result" }, "Still not ended after 10 minutes: see the run in Airflow's grid, or open the file again later."));
  }
}

async function retry(id) {
  const area = document.getElementById("retry-area");
  if (!document.getElementById("file-dialog").open) await openFile(id);
  const ticket = shown;
  area.replaceChildren(el("p", { class: "muted" }, "Asking Airflow what a retry clears…"));
  try {
    const plan = await call("GET", `${BASE}/api/v1/file-jobs/${id}/retry-plan`);
    const url = `${AIRFLOW}/${plan.clear_path}`;
    const preview = await call("POST", url, { ...plan.body, dry_run: true });
    const tasks = el("ul", { class: "clear-preview" });
    for (const ti of preview.task_instances) tasks.append(el("li", {}, `${ti.task_id}${ti.map_index >= 0 ? `[${ti.map_index}]` : ""}: ${ti.state}`));
    const files = el("ul", { class: "clear-files" });
    for (const name of plan.files_in_task) files.append(el("li", {}, name));
    if (ticket !== shown) return;
    if (preview.task_instances.length === 0) {
      area.replaceChildren(el("p", { class: "notice bad" }, "Airflow has nothing to clear: the file's task is not failed (any more). Reload the page."));
      return;
    }
    const go = el("button", { class: "retry-confirm" }, `Clear ${preview.task_instances.length} task instance(s) and rerun`);
    area.replaceChildren(
      el("h3", {}, "Retry preview"),
      el("p", {}, `Airflow will clear these task instances of ${plan.body.dag_run_id}:`), tasks,
      el("p", {}, "The transform task holds these files; all are transformed again:"), files, go,
    );
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        // A little before the clear: the server's clock and this browser's may differ by a moment.
        const clearedAt = Date.now() - 5000;
        const done = await call("POST", url, { ...plan.body, dry_run: false });
        area.replaceChildren(el("p", { class: "notice retry-cleared" }, `Cleared ${done.task_instances.length} task instance(s). Watching the file…`));
        await watch(plan.file_job, area, ticket, clearedAt);
      } catch (error) {
        area.replaceChildren(el("p", { class: "notice bad" }, `Airflow did not clear it: ${error.message}`));
      }
    });
  } catch (error) {
    area.replaceChildren(el("p", { class: "notice bad" }, `No retry: ${error.message}`));
  }
}

function openInAirflow(link) {
  // Airflow's UI shows this page in a sandboxed frame that may not navigate the top window (no
  // allow-top-navigation: a target="_top" link does nothing there). The frame is same-origin, so move
  // the UI's own router to the link instead, as the UI's links do. False when that is not possible.
  if (window.top === window) return false;
  try {
    window.top.history.pushState(null, "", link.href);
    window.top.dispatchEvent(new PopStateEvent("popstate"));
    return true;
  } catch (error) {
    return false;
  }
}

document.getElementById("file-dialog").addEventListener("close", () => { shown++; });

function titleOnce(event) {
  const node = event.target.closest && event.target.closest("table.grid .cell");
  if (node && !node.title) node.title = cellTitle(node, statusOf(node));
}
document.addEventListener("mouseover", titleOnce);
document.addEventListener("focusin", titleOnce);

// The grid is one tab stop, not thousands: its first file cell takes the focus, and the arrow keys (Home,
// End) move it from cell to cell, as in a spreadsheet; Enter or Space opens the file. Cells without a
// file are focusable by the arrows only, so that a row or column can be crossed.
function gridKeys(table) {
  const cellsOf = (row) => Array.from(row.querySelectorAll(".cell"));
  const rows = Array.from(table.tBodies[0] ? table.tBodies[0].rows : []).map(cellsOf).filter((r) => r.length);
  if (!rows.length) return;
  for (const row of rows) for (const cell of row) cell.tabIndex = -1;
  (table.querySelector("button.cell") || rows[0][0]).tabIndex = 0;
  table.addEventListener("keydown", (event) => {
    const cell = event.target.closest(".cell");
    if (!cell) return;
    const r = rows.findIndex((row) => row.includes(cell));
    const c = rows[r].indexOf(cell);
    const moves = {
      ArrowRight: [r, c + 1], ArrowLeft: [r, c - 1], ArrowDown: [r + 1, c], ArrowUp: [r - 1, c],
      Home: [r, 0], End: [r, rows[r].length - 1],
    };
    const to = moves[event.key];
    if (!to) return;
    event.preventDefault();
    const [nr, nc] = [Math.max(0, Math.min(rows.length - 1, to[0])), to[1]];
    const next = rows[nr][Math.max(0, Math.min(rows[nr].length - 1, nc))];
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });
}
for (const table of document.querySelectorAll("table.grid")) gridKeys(table);

document.addEventListener("click", (event) => {
  const airflowLink = event.target.closest("a.log-link");
  if (airflowLink) { if (openInAirflow(airflowLink)) event.preventDefault(); return; }
  const retryButton = event.target.closest("[data-retry]");
  if (retryButton) { event.preventDefault(); retry(retryButton.dataset.retry); return; }
  const file = event.target.closest("[data-file-job]");
  if (file) { event.preventDefault(); openFile(file.dataset.fileJob); }
});

for (const section of document.querySelectorAll("[data-refresh-seconds]")) {
  setInterval(async () => {
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(section.id);
      if (fresh) section.replaceChildren(...fresh.childNodes);
    } catch (error) { /* the next refresh tries again */ }
  }, Number(section.dataset.refreshSeconds) * 1000);
}
