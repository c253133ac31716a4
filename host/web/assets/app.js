// tollgate's page: the deals table and the status view.
//
// Every value from Keepa or the daemon is data: it reaches the page only as
// text (textContent, attributes set one by one), never as markup. There is
// no innerHTML in this file, and the Content-Security-Policy forbids inline
// script besides.
"use strict";

// ------------------------------------------------------------ helpers

// el("td", {class: "num"}, "text", child...) - children are text or nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined && v !== false) node.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function showError(msg) {
  const e = document.getElementById("error");
  if (!e) return;
  e.hidden = !msg;
  e.textContent = msg || "";
}

function fmtInt(n) {
  return Number(n).toLocaleString("en-US", { maximumFractionDigits: 0 });
}

function fmtDuration(s) {
  s = Math.max(0, Math.round(s));
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

function fmtAgo(unixS) {
  if (unixS === null || unixS === undefined) return "–";
  return `${fmtDuration(Date.now() / 1000 - unixS)} ago`;
}

function setVerdictPill(verdict) {
  const pill = document.getElementById("verdict-pill");
  if (!pill) return;
  pill.textContent = verdict || "";
  pill.className = `pill v-${verdict || "unknown"}`;
}

// ------------------------------------------------------------ the deals

// Keepa's domain ids: the Amazon site and the currency of each.
const DOMAINS = {
  1: ["amazon.com", "USD"], 2: ["amazon.co.uk", "GBP"], 3: ["amazon.de", "EUR"], 4: ["amazon.fr", "EUR"],
  5: ["amazon.co.jp", "JPY"], 6: ["amazon.ca", "CAD"], 8: ["amazon.it", "EUR"], 9: ["amazon.es", "EUR"],
  10: ["amazon.in", "INR"], 11: ["amazon.com.mx", "MXN"], 12: ["amazon.com.br", "BRL"],
};

function money(cents, domain) {
  if (cents === null || cents === undefined) return "–";
  const currency = (DOMAINS[domain] || [null, "USD"])[1];
  // Keepa gives yen whole; every other currency in hundredths.
  const value = currency === "JPY" ? cents : cents / 100;
  return value.toLocaleString("en-US", { style: "currency", currency });
}

const ASIN = /^[A-Z0-9]{10}$/;

function productLinks(row) {
  const td = el("td", { class: "links" });
  const site = DOMAINS[row.domain];
  if (!site || typeof row.asin !== "string" || !ASIN.test(row.asin)) return td;
  const asin = encodeURIComponent(row.asin);
  td.append(
    el("a", { href: `https://www.${site[0]}/dp/${asin}`, rel: "noopener noreferrer", target: "_blank" }, "Amazon"),
    el("a", { href: `https://keepa.com/#!product/${row.domain}-${asin}`, rel: "noopener noreferrer", target: "_blank" }, "Keepa"),
  );
  return td;
}

function dealRow(row) {
  const profit = row.est_profit_cents;
  return el("tr", { "data-asin": row.asin },
    el("td", { class: "title" }, el("span", { class: "t" }, row.title === null ? "(no title)" : row.title),
      el("span", { class: "asin" }, row.asin)),
    el("td", { class: "num price" }, money(row.current_cents, row.domain)),
    el("td", { class: "num avg" }, money(row.avg_cents, row.domain)),
    el("td", { class: "num drop_pct" }, row.drop_pct === null ? "–" : el("span", { class: "drop" }, `${row.drop_pct}%`)),
    el("td", { class: "num rank" }, row.sales_rank === null ? "–" : fmtInt(row.sales_rank)),
    el("td", { class: `num profit ${profit > 0 ? "pos" : profit < 0 ? "neg" : ""}`, "data-cents": profit }, money(profit, row.domain)),
    el("td", { class: "when", title: row.first_seen ? new Date(row.first_seen * 1000).toISOString() : null }, fmtAgo(row.first_seen)),
    el("td", { class: "when", title: row.last_seen ? new Date(row.last_seen * 1000).toISOString() : null }, fmtAgo(row.last_seen)),
    productLinks(row),
  );
}

function dealsView() {
  const form = document.getElementById("filters");
  const tbody = document.querySelector("#deals tbody");
  const perPage = document.getElementById("per-page");
  const state = { sort: "est_profit_cents", order: "desc", offset: 0, limit: 50 };

  // The filter fields as API parameters (prices typed in units, sent in cents).
  function filterParams() {
    const p = new URLSearchParams();
    for (const input of form.querySelectorAll("input")) {
      const v = input.value.trim();
      if (!v) continue;
      if (input.dataset.money) p.set(input.name, String(Math.round(Number(v) * 100)));
      else p.set(input.name, v);
    }
    p.set("sort", state.sort);
    p.set("order", state.order);
    return p;
  }

  // The view lives in the address, so a reload or a shared link shows it.
  function fromAddress() {
    const p = new URLSearchParams(location.search);
    for (const input of form.querySelectorAll("input")) {
      const v = p.get(input.name);
      if (v === null) continue;
      input.value = input.dataset.money ? String(Number(v) / 100) : v;
    }
    if (p.get("sort")) state.sort = p.get("sort");
    if (p.get("order") === "asc" || p.get("order") === "desc") state.order = p.get("order");
    if (p.get("offset")) state.offset = Math.max(0, parseInt(p.get("offset"), 10) || 0);
    if (p.get("limit")) state.limit = Math.max(1, parseInt(p.get("limit"), 10) || 50);
    perPage.value = String(state.limit);
  }

  async function load() {
    const p = filterParams();
    document.getElementById("csv").href = `/deals.csv?${p}`;
    const page = new URLSearchParams(p);
    page.set("limit", String(state.limit));
    page.set("offset", String(state.offset));
    history.replaceState(null, "", `?${page}`);
    for (const b of document.querySelectorAll("th button[data-sort]")) {
      if (b.dataset.sort === state.sort) b.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
      else b.removeAttribute("aria-sort");
    }
    let data;
    try {
      data = await getJSON(`/api/deals?${page}`);
      showError(null);
    } catch (e) {
      showError(`Cannot load the deals: ${e.message}`);
      return;
    }
    clear(tbody);
    for (const row of data.rows) tbody.append(dealRow(row));
    if (data.rows.length === 0) {
      tbody.append(el("tr", {}, el("td", { colspan: 9, class: "empty" }, "No deal matches these filters.")));
    }
    const first = data.total === 0 ? 0 : data.offset + 1;
    const last = data.offset + data.rows.length;
    document.getElementById("summary").textContent =
      `${fmtInt(data.total)} deals match · showing ${fmtInt(first)}–${fmtInt(last)}`;
    const pages = Math.max(1, Math.ceil(data.total / state.limit));
    document.getElementById("page").textContent = `Page ${fmtInt(Math.floor(state.offset / state.limit) + 1)} of ${fmtInt(pages)}`;
    document.getElementById("prev").disabled = state.offset === 0;
    document.getElementById("next").disabled = last >= data.total;
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); state.offset = 0; load(); });
  form.addEventListener("reset", () => { setTimeout(() => { state.offset = 0; load(); }, 0); });
  for (const b of document.querySelectorAll("th button[data-sort]")) {
    b.addEventListener("click", () => {
      if (state.sort === b.dataset.sort) state.order = state.order === "desc" ? "asc" : "desc";
      else { state.sort = b.dataset.sort; state.order = b.dataset.sort === "title" ? "asc" : "desc"; }
      state.offset = 0;
      load();
    });
  }
  document.getElementById("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); load(); });
  document.getElementById("next").addEventListener("click", () => { state.offset += state.limit; load(); });
  perPage.addEventListener("change", () => { state.limit = parseInt(perPage.value, 10); state.offset = 0; load(); });
  fromAddress();
  load();
  // The verdict in the header, now and then.
  const verdict = () => getJSON("/api/status").then((s) => setVerdictPill(s.verdict), () => setVerdictPill(null));
  verdict();
  setInterval(verdict, 10000);
}

// ------------------------------------------------------------ the status

function fact(dl, label, value) {
  dl.append(el("dt", {}, label), el("dd", {}, value));
}

function drawChart(box, perMinute, rate) {
  // Drawn at the box's own width, so text keeps its size.
  const W = Math.max(320, box.clientWidth || 720), H = 200, L = 48, R = 8, T = 12, B = 24;
  const values = perMinute || [];
  const top = Math.max(1, rate || 0, ...values) * 1.1;
  const plotW = W - L - R, plotH = H - T - B, bw = plotW / Math.max(1, values.length);
  const y = (v) => T + plotH - (v / top) * plotH;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "tokens consumed per minute" });
  for (const f of [0, 0.5, 1]) {
    const v = top * f / 1.1;
    s.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "axis" }));
    const t = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    t.textContent = fmtInt(v);
    s.append(t);
  }
  values.forEach((v, i) => {
    const r = svg("rect", { x: L + i * bw + 1, y: y(v), width: Math.max(1, bw - 2), height: Math.max(0, T + plotH - y(v)), class: "bar-rect" });
    const tip = svg("title", {});
    tip.textContent = `${60 - i} min ago: ${fmtInt(v)} tokens`;
    r.append(tip);
    s.append(r);
  });
  if (rate > 0) s.append(svg("line", { x1: L, x2: W - R, y1: y(rate), y2: y(rate), class: "plan" }));
  for (const [x, label, anchor] of [[L, "60 min ago", "start"], [L + plotW / 2, "30", "middle"], [W - R, "now", "end"]]) {
    const t = svg("text", { x, y: H - 8, "text-anchor": anchor });
    t.textContent = label;
    s.append(t);
  }
  clear(box);
  box.append(s, el("p", { class: "legend" },
    el("span", { class: "key-spent" }, "tokens spent"),
    el("span", { class: "key-plan" }, rate > 0 ? `plan ${fmtInt(rate)} tokens/min` : "no rate known yet")));
}

function taskCard(t) {
  const done = t.progress_done || 0, total = t.progress_total;
  const unit = t.progress_unit || "";
  const card = el("div", { class: "task", "data-task": t.name });
  const left = el("div", {},
    el("div", { class: "name" }, t.name),
    el("div", { class: "plugin" }, `${t.plugin} ${t.plugin_version}${t.required ? " · required" : ""} · ${t.schedule === "interval" ? `every ${fmtDuration(t.interval_s)}` : "continuous"}`),
    el("span", { class: `state s-${t.state}`, "data-state": t.state }, t.state.replace(/_/g, " ")));
  const right = el("div", { class: "detail" });

  // Progress, and when the work will be done at the current pace.
  let eta = "";
  if (total > 0 && t.throughput_per_min > 0 && done < total) {
    eta = `done in ~${fmtDuration(((total - done) / t.throughput_per_min) * 60)}`;
  } else if (total > 0 && done >= total) {
    eta = "complete";
  }
  right.append(el("div", { class: "progress-line" },
    el("span", {}, total > 0 ? `${fmtInt(done)} of ${fmtInt(total)} ${unit}` : `${fmtInt(done)} ${unit || "done"}`),
    el("span", { class: "progress-eta" }, eta)));
  if (total > 0) {
    const pct = Math.min(100, (100 * done) / total);
    const bar = el("div", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(pct) },
      el("div", { class: "fill" }));
    bar.firstChild.style.width = `${pct}%`;
    right.append(bar);
  }

  if (t.waiting) {
    const w = t.waiting;
    right.append(el("div", { class: "wait" },
      `Waiting for tokens: ${w.kind} costs ${fmtInt(w.cost)}, target ${fmtInt(w.target)}, estimate ${fmtInt(w.estimate)}, ` +
      `ETA ${w.eta_s < 0 ? "unknown (no reading yet)" : fmtDuration(w.eta_s)} (waited ${fmtDuration(w.waited_s)})`));
  } else if (t.until_ms) {
    right.append(el("div", { class: "meta" }, `${t.state.replace(/_/g, " ")} for ${fmtDuration((t.until_ms - Date.now()) / 1000)} more${t.waiting_lock ? ` (lock ${t.waiting_lock})` : ""}`));
  }
  if (t.reason) right.append(el("div", { class: `why w-${t.verdict}` }, `${t.verdict}: ${t.reason}`));
  else if (t.last_error) right.append(el("div", { class: "meta" }, `last error: ${t.last_error}`));
  const k = t.tokens || {};
  right.append(el("div", { class: "nums" },
    el("span", {}, "tokens ", el("b", {}, fmtInt(k.consumed || 0))),
    el("span", {}, "calls ok/429/error ", el("b", {}, `${k.calls_ok || 0}/${k.calls_429 || 0}/${k.calls_error || 0}`)),
    el("span", {}, "wait p50/max ", el("b", {}, `${fmtDuration(k.wait_p50_s || 0)}/${fmtDuration(k.wait_max_s || 0)}`)),
    el("span", {}, "runs/failures ", el("b", {}, `${t.runs}/${t.failures}`)),
    el("span", {}, "last progress ", el("b", {}, `${fmtDuration(t.last_progress_age_s)} ago`)),
    el("span", {}, "verdict ", el("b", {}, t.verdict))));
  card.append(left, right);
  return card;
}

function statusView() {
  let last = 0;
  async function refresh() {
    try {
      const s = await getJSON("/api/status");
      showError(null);
      last = Date.now();
      setVerdictPill(s.verdict);
      const card = document.getElementById("verdict-card");
      card.className = `card verdict-card v-${s.verdict}`;
      document.getElementById("verdict").textContent = s.verdict.toUpperCase();
      document.getElementById("reason").textContent = s.reason || "every task is doing what it should";
      document.getElementById("daemon").textContent = `tollgate ${s.version}, pid ${s.pid}, up ${fmtDuration(s.uptime_s)}`;
      const tok = s.tokens, dl = document.getElementById("tokens");
      clear(dl);
      fact(dl, "estimate", tok.have_reading ? fmtInt(tok.estimate) : "no reading yet");
      fact(dl, "last reading", `${fmtInt(tok.last_reading)} (${fmtDuration(tok.last_reading_age_s)} ago)`);
      fact(dl, "rate", `${fmtInt(tok.rate_per_min)}/min, cap ${fmtInt(tok.cap)}`);
      fact(dl, "our 429s", fmtInt(tok.our_429));
      fact(dl, "others on the key", `${tok.outside_per_min.toFixed(1)}/min`);
      fact(dl, "policy", tok.policy);
      const u = tok.utilization_1h || 0;
      document.getElementById("utilization").textContent = `${(u * 100).toFixed(0)}%`;
      document.getElementById("utilization-bar").style.width = `${Math.min(100, u * 100)}%`;
      drawChart(document.getElementById("chart"), tok.per_minute, tok.rate_per_min);
      const tasks = document.getElementById("tasks");
      clear(tasks);
      for (const t of s.tasks) tasks.append(taskCard(t));
    } catch (e) {
      showError(`Cannot reach the daemon: ${e.message}`);
    }
    setTimeout(refresh, 2000);
  }
  setInterval(() => {
    document.getElementById("updated").textContent = last ? `updated ${fmtDuration((Date.now() - last) / 1000)} ago · refreshes every 2 s` : "";
  }, 1000);
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  const view = document.body.dataset.view;
  if (view === "deals") dealsView();
  else if (view === "status") statusView();
});
