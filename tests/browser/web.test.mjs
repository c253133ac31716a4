// The web page in a real browser: Debian's chromium, driven by playwright-core,
// against `tollgate sim` and `tollgate run` on 127.0.0.1 (no other address is
// ever contacted: the browser's background traffic is switched off, and the
// links to Amazon and Keepa are read, never followed).
//
//   node tests/browser/web.test.mjs   (env: TOLLGATE, TOLLGATE_PLUGIN_DIRS, SCREENSHOT_DIR)
//
// Exit 77 (skipped) when chromium or the npm packages are missing.
//
// Phase 1: a daemon with its three tasks fills the database; the status page
// is tested while they work. Phase 2: the same database under a daemon with
// no tasks, so it holds still while the deals page is compared with it.
// Phase 3: the page on 0.0.0.0 (reached only through 127.0.0.1) with a token.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
if (!existsSync(CHROMIUM) || !existsSync(join(here, "node_modules", "playwright-core"))) {
  console.log(`# SKIP: needs ${CHROMIUM} and 'npm ci' in ${here}`);
  process.exit(77);
}
const { chromium } = await import("playwright-core");
const { test, before, after } = await import("node:test");

const TOLLGATE = process.env.TOLLGATE || "build/host/tollgate";
const PLUGIN_DIRS = (process.env.TOLLGATE_PLUGIN_DIRS || "build/plugins").split(":").filter(Boolean).map((d) => resolve(d));
const SHOTS = process.env.SCREENSHOT_DIR || "build/browser-screenshots";
const KEY = "browser-key";
const TOKEN = "Zm9yLXRoZS1icm93c2VyLXRlc3Qtb25seQ==";
const XSS = "<img src=x onerror=alert(1)>";
const XSS2 = "\"><script>alert(2)</script>&amp;";

const dir = mkdtempSync(join(tmpdir(), "tollgate-browser-"));
mkdirSync(SHOTS, { recursive: true });
const children = [];

// ------------------------------------------------------------ processes

function start(args, env = {}) {
  const child = spawn(TOLLGATE, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.out = "";
  child.stdout.on("data", (d) => { child.out += d; });
  child.stderr.on("data", (d) => { child.out += d; });
  children.push(child);
  return child;
}

async function waitFor(what, fn, timeoutMs = 90000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      if (e.fatal) throw e;
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await done;
}

function sqlite(db, sql) {
  const r = spawnSync("sqlite3", ["-bail", db, sql], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

function config(name, web, { tasks = true } = {}) {
  const taskText = `tasks = (
  { name = "backfiller"; plugin = "backfiller"; required = true; weight = 1; schedule = "continuous";
    settings = { query = { domainId = 1; priceTypes = [ 2 ]; dateRange = 3; currentRange = [ 500, 45100 ];
      deltaPercentRange = [ 10, 100 ]; isRangeEnabled = true; sortType = 4; }; rewalk_after_s = 3600; }; },
  { name = "upserter"; plugin = "upserter"; required = true; weight = 2; schedule = 5;
    settings = { query = { domainId = 1; priceTypes = [ 2 ]; dateRange = 3; currentRange = [ 500, 45100 ];
      deltaPercentRange = [ 10, 100 ]; isRangeEnabled = true; }; }; },
  { name = "janitor"; plugin = "janitor"; required = false; weight = 1; schedule = 20;
    settings = { refresh_after_h = 1; max_age_h = 3; }; }
);`;
  const path = join(dir, `${name}.cfg`);
  writeFileSync(path, `keepa: { endpoint = "${sim.url}"; domain = 1; timeout_s = 30; };
tokens: { minute_ms = 300; latency_target_s = 30; };
storage: { backend = "sqlite"; path = "${join(dir, "tollgate.db")}"; };
runtime_dir = "${join(dir, `run-${name}`)}";
plugin_path = [ ${PLUGIN_DIRS.map((d) => JSON.stringify(d)).join(", ")} ];
log: { level = "info"; };
status: { socket = "${join(dir, `run-${name}`, "status.sock")}"; stall_after_s = 600; };
web: { ${web} };
${tasks ? taskText : ""}
`);
  return path;
}

async function daemon(cfg) {
  const d = start(["--config", cfg, "run"], { KEEPA_API_KEY: KEY });
  const m = await waitFor("the web page's address in the log", () => {
    if (d.exitCode !== null) throw Object.assign(new Error(`daemon exited ${d.exitCode}: ${d.out}`), { fatal: true });
    return d.out.match(/web page on http:\/\/[0-9.]+:(\d+)\//);
  });
  d.url = `http://127.0.0.1:${m[1]}`;
  return d;
}

// ------------------------------------------------------------ the browser

let browser, sim;
const dialogs = [], pageErrors = [];

async function newPage() {
  const page = await browser.newPage();
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  page.on("pageerror", (e) => { pageErrors.push(e.message); });
  // The page itself must live within its Content-Security-Policy.
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text()); });
  return page;
}

// The ASINs of the rows the page shows, in order.
const shownAsins = (page) => page.$$eval("#deals tbody tr[data-asin]", (rows) => rows.map((r) => r.dataset.asin));

before(async () => {
  sim = start(["sim", "--port", "0", "--key", KEY, "--rate", "60", "--minute-ms", "300", "--products", "4000",
    "--start-tokens", "100"]);
  const m = await waitFor("the simulator", () => sim.out.match(/http:\/\/127\.0\.0\.1:(\d+)/), 60000);
  sim.url = `http://127.0.0.1:${m[1]}`;
  const profile = mkdtempSync(join(dir, "chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  if (browser) await browser.close();
  assert.deepEqual(pageErrors, [], "no script error on any page");
  for (const c of children) await stop(c);
  rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------ phase 1

test("status page: every task with its state, a token wait with its ETA, the chart", async () => {
  const d = await daemon(config("working", `listen = "127.0.0.1:0"; requests_per_s = 1000;`));
  try {
    await statusChecks(d);
  } finally {
    // Phase 2 needs a database that holds still.
    await stop(d);
  }
  assert.equal(d.exitCode, 0, d.out);
});

async function statusChecks(d) {
  const page = await newPage();
  await page.goto(`${d.url}/status`);
  // Every task of the daemon's own status document, each with a state.
  const api = await waitFor("three tasks in /api/status", async () => {
    const s = await (await page.request.get(`${d.url}/api/status`)).json();
    return s.tasks.length === 3 ? s : null;
  });
  await waitFor("a card per task", async () =>
    (await page.$$eval(".task", (c) => c.map((x) => x.dataset.task))).join() === api.tasks.map((t) => t.name).join());
  for (const t of api.tasks) {
    const state = await page.textContent(`.task[data-task="${t.name}"] .state`);
    assert.match(state, /^[a-z ]+$/, `task ${t.name} shows a state`);
  }
  // Rows accumulate for phase 2; then the bucket is emptied and the plan
  // shrinks to 1 token a minute, so the next call (the upserter's, every
  // 5 s) waits in line for several seconds, and the page says how long.
  await waitFor("120 deals in the database", () => Number(sqlite(join(dir, "tollgate.db"), "select count(*) from deals")) >= 120, 120000);
  const ctl = await page.request.get(`${sim.url}/_sim/control?rate=1&tokens=0`);
  assert.equal(ctl.status(), 200);
  let cards = [];
  const wait = await waitFor("a task waiting for tokens with its ETA", async () => {
    cards = await page.$$eval(".task", (cs) => cs.map((c) => ({
      state: c.querySelector(".state").dataset.state, wait: c.querySelector(".wait")?.textContent || "",
    })));
    return cards.find((c) => c.state === "waiting_for_tokens" && /ETA \d+(\.\d)? (s|min|h)/.test(c.wait));
  }).catch((e) => { throw new Error(`${e.message}; the cards: ${JSON.stringify(cards)}`); });
  assert.match(wait.wait, /Waiting for tokens: \w+ costs \d+, target \d+, estimate -?\d+, ETA \d+/);
  // Verdict, the token estimate, and bars drawn from the per-minute history.
  await waitFor("chart bars", async () => (await page.$$("#chart svg rect")).length === 60);
  assert.match(await page.textContent("#verdict"), /^(OK|WARNING|CRITICAL)$/);
  assert.match(await page.textContent("#tokens"), /estimate/);
  await waitFor("tokens spent in the chart", () =>
    page.$$eval("#chart svg rect", (rs) => rs.some((r) => Number(r.getAttribute("height")) > 0)));
  await page.screenshot({ path: join(SHOTS, "status.png"), fullPage: true });
  await page.close();
}

// ------------------------------------------------------------ phase 2

let quiet, db, cfgQuiet;

test("deals page: the database's rows, sorted by profit, filtered by drop %", async () => {
  db = join(dir, "tollgate.db");
  const now = Math.floor(Date.now() / 1000);
  // Hostile titles, as Keepa could send them; the first sorts to the top by profit.
  sqlite(db, `insert into deals (domain, asin, title, current_cents, avg_cents, drop_pct, sales_rank, est_profit_cents,
    first_seen, last_seen) values (1, 'XSS0000001', '${XSS}', 1000, 99000, 99, 1, 99999999, ${now}, ${now}),
    (1, 'XSS0000002', '${XSS2.replace(/'/g, "''")}', 1000, 2000, 50, 2, 99999998, ${now}, ${now})`);
  cfgQuiet = config("quiet", `listen = "127.0.0.1:0"; requests_per_s = 1000;`, { tasks: false });
  quiet = await daemon(cfgQuiet);
  const page = await newPage();
  await page.goto(`${quiet.url}/`);
  await page.waitForSelector("#deals tbody tr[data-asin]");

  // What the page lists is what the database holds, in the same order.
  const byProfit = (where = "", order = "desc") => sqlite(db, `select asin from deals ${where} order by
    est_profit_cents ${order}, domain ${order}, asin ${order} limit 50`).trim().split("\n");
  assert.deepEqual(await shownAsins(page), byProfit());
  const total = Number(sqlite(db, "select count(*) from deals"));
  assert.match(await page.textContent("#summary"), new RegExp(`^${total.toLocaleString("en-US")} deals match`));
  assert.equal(await page.getAttribute('th button[data-sort="est_profit_cents"]', "aria-sort"), "descending");
  // A row's cells are its columns.
  const row = sqlite(db, `select title, drop_pct, sales_rank from deals where asin = (select asin from deals
    where asin not like 'XSS%' order by est_profit_cents desc limit 1)`).trim().split("|");
  const firstReal = (await shownAsins(page)).find((a) => !a.startsWith("XSS"));
  assert.equal(await page.textContent(`tr[data-asin="${firstReal}"] .t`), row[0]);
  assert.equal(await page.textContent(`tr[data-asin="${firstReal}"] .drop_pct`), `${row[1]}%`);
  // The walk stores its pages before it buys their products, so the row may
  // not have a sales rank yet: NULL is shown as a dash.
  assert.equal(await page.textContent(`tr[data-asin="${firstReal}"] .rank`),
    row[2] === "" ? "–" : Number(row[2]).toLocaleString("en-US"));
  const links = await page.$$eval(`tr[data-asin="${firstReal}"] .links a`, (as) => as.map((a) => a.href));
  assert.deepEqual(links, [`https://www.amazon.com/dp/${firstReal}`, `https://keepa.com/#!product/1-${firstReal}`]);
  await page.screenshot({ path: join(SHOTS, "deals.png"), fullPage: false });

  // Sorting: by drop, then back to profit, then profit ascending.
  await page.click('th button[data-sort="drop_pct"]');
  const byDrop = sqlite(db, "select asin from deals order by drop_pct desc, domain desc, asin desc limit 50").trim().split("\n");
  await waitFor("rows sorted by drop", async () => (await shownAsins(page)).join() === byDrop.join());
  await page.click('th button[data-sort="est_profit_cents"]');
  await waitFor("rows sorted by profit", async () => (await shownAsins(page)).join() === byProfit().join());
  await page.click('th button[data-sort="est_profit_cents"]');
  await waitFor("rows sorted by profit, ascending", async () => (await shownAsins(page)).join() === byProfit("", "asc").join());
  const cents = await page.$$eval("#deals td.profit", (tds) => tds.map((t) => Number(t.dataset.cents)));
  assert.deepEqual(cents, [...cents].sort((a, b) => a - b));
  await page.click('th button[data-sort="est_profit_cents"]');

  // Filtering by drop %: every row shown qualifies, and the count is the database's.
  await page.fill('input[name="drop_pct_min"]', "30");
  await page.click('button[type="submit"]');
  await waitFor("filtered rows", async () => (await shownAsins(page)).join() === byProfit("where drop_pct >= 30").join());
  const drops = await page.$$eval("#deals td.drop_pct", (tds) => tds.map((t) => parseInt(t.textContent, 10)));
  assert.ok(drops.length > 0 && drops.every((x) => x >= 30), `drops ${drops}`);
  const filtered = Number(sqlite(db, "select count(*) from deals where drop_pct >= 30"));
  assert.ok(filtered < total, "the filter keeps fewer rows than there are");
  assert.match(await page.textContent("#summary"), new RegExp(`^${filtered.toLocaleString("en-US")} deals match`));
  await page.screenshot({ path: join(SHOTS, "deals-filtered.png"), fullPage: false });

  // "Download CSV" carries the filter and the sort; its bytes are `tollgate export`'s.
  const href = await page.getAttribute("#csv", "href");
  assert.match(href, /drop_pct_min=30/);
  const csv = await (await page.request.get(new URL(href, quiet.url).toString())).text();
  const exp = spawnSync(TOLLGATE, ["--config", cfgQuiet, "export", "--where", "drop_pct>=30", "--sort", "-est_profit_cents"],
    { encoding: "utf8" });
  assert.equal(exp.status, 0, exp.stderr);
  assert.equal(csv, exp.stdout);
  if (csv.trim().split("\r\n").length !== filtered + 1) writeFileSync(join(SHOTS, "deals-filtered.csv"), csv);
  assert.equal(csv.trim().split("\r\n").length, filtered + 1, "header + rows (the CSV is kept beside the screenshots)");
  await page.close();
});

test("a hostile title is shown as text and runs nothing", async () => {
  const page = await newPage();
  await page.goto(`${quiet.url}/?q=${encodeURIComponent("onerror")}`);
  await page.waitForSelector('tr[data-asin="XSS0000001"]');
  await page.waitForLoadState("networkidle");
  assert.equal(await page.textContent('tr[data-asin="XSS0000001"] .t'), XSS);
  await page.goto(`${quiet.url}/`);
  await page.waitForSelector('tr[data-asin="XSS0000002"]');
  await page.waitForLoadState("networkidle");
  assert.equal(await page.textContent('tr[data-asin="XSS0000002"] .t'), XSS2);
  // No element was made from the text, nothing ran.
  assert.equal(await page.$$eval("#deals img, #deals script", (n) => n.length), 0);
  assert.equal(await page.$$eval('tr[data-asin^="XSS"] .t', (ts) => ts.every((t) => t.children.length === 0)), true);
  assert.deepEqual(dialogs, []);
  // The API carries it as escaped JSON data.
  const raw = await (await page.request.get(`${quiet.url}/api/deals?q=onerror`)).text();
  assert.ok(!raw.includes("<img"), raw.slice(0, 200));
  assert.equal(JSON.parse(raw).rows[0].title, XSS);
  await page.close();
});

test("the API validates its parameters and every answer carries the security headers", async () => {
  const page = await newPage();
  const get = (path, opts) => page.request.get(`${quiet.url}${path}`, opts);
  for (const bad of ["/api/deals?sort=asin", "/api/deals?limit=501", "/api/deals?drop_pct_min=x",
    "/api/deals?title_min=1", "/api/deals?sort=drop_pct%3Bdrop%20table%20deals"]) {
    const r = await get(bad);
    assert.equal(r.status(), 400, bad);
    assert.ok((await r.json()).error, bad);
  }
  for (const path of ["/", "/status", "/api/status", "/api/deals", "/healthz", "/nope", "/../etc/passwd"]) {
    const h = (await get(path)).headers();
    assert.match(h["content-security-policy"], /default-src 'none'; script-src 'self'/, path);
    assert.equal(h["x-content-type-options"], "nosniff", path);
  }
  assert.equal((await get("/../etc/passwd")).status(), 404);
  assert.equal((await get("/healthz")).status(), 200);
  assert.equal((await page.request.post(`${quiet.url}/api/status`)).status(), 405);
  // /api/status is the document of `tollgate status --json`: the same keys.
  const api = await (await get("/api/status")).json();
  const cli = spawnSync(TOLLGATE, ["--config", cfgQuiet, "status", "--json"], { encoding: "utf8" });
  assert.deepEqual(Object.keys(api).sort(), Object.keys(JSON.parse(cli.stdout)).sort());
  assert.equal(api.tokens.per_minute.length, 60);
  // The Keepa key is nowhere: not in a page, not in the API.
  for (const path of ["/", "/status", "/app.js", "/api/status", "/api/deals?limit=500", "/deals.csv"]) {
    assert.ok(!(await (await get(path)).text()).includes(KEY), path);
  }
  // Headers past the limit are refused, not buffered.
  const big = await get("/healthz", { headers: { "X-Big": "a".repeat(100000) } }).catch((e) => e);
  assert.ok(big instanceof Error || big.status() >= 400, "a 100 kB header is refused");
  await page.close();
  await stop(quiet);
  assert.equal(quiet.exitCode, 0, quiet.out); // an orderly stop (and, under ASan, no leak)
});

// ------------------------------------------------------------ phase 3

test("on a non-loopback address every path but the login form needs the token", async () => {
  const tokenFile = join(dir, "web.token");
  writeFileSync(tokenFile, `${TOKEN}\n`);
  chmodSync(tokenFile, 0o600);
  // Bound to every address, reached only through 127.0.0.1.
  const d = await daemon(config("open", `listen = "0.0.0.0:0"; token_file = "${tokenFile}"; requests_per_s = 50;`, { tasks: false }));
  const page = await newPage();
  for (const path of ["/", "/status", "/api/status", "/api/deals", "/deals.csv", "/healthz", "/app.js",
    "/favicon.svg", "/nope", "/api/deals?sort=drop_pct"]) {
    const r = await page.request.get(`${d.url}${path}`);
    assert.equal(r.status(), 401, path);
    assert.ok(!(await r.text()).includes("XSS0000001"), path);
  }
  assert.equal((await page.request.get(`${d.url}/login`)).status(), 200);
  assert.equal((await page.request.get(`${d.url}/style.css`)).status(), 200);
  assert.equal((await page.request.get(`${d.url}/api/status`, { headers: { Authorization: "Bearer wrong-token-wrong-token" } })).status(), 401);
  assert.equal((await page.request.get(`${d.url}/api/status`, { headers: { Authorization: `Bearer ${TOKEN}` } })).status(), 200);

  // A browser: the page is the login form; a wrong token says so; the right one lets it in.
  const resp = await page.goto(`${d.url}/`);
  assert.equal(resp.status(), 401);
  await page.fill('input[name="token"]', "not-the-token-at-all");
  await page.click('button[type="submit"]');
  await page.waitForSelector("#login-failed:not([hidden])");
  await page.screenshot({ path: join(SHOTS, "login.png"), fullPage: false });
  await page.fill('input[name="token"]', TOKEN);
  await page.click('button[type="submit"]');
  await page.waitForSelector('tr[data-asin="XSS0000001"]');
  const cookies = await browser.cookies(d.url);
  const c = cookies.find((x) => x.name === "tollgate_token");
  assert.ok(c && c.httpOnly && c.sameSite === "Strict", JSON.stringify(cookies));
  assert.equal((await page.request.get(`${d.url}/api/deals`)).status(), 200); // the cookie
  await browser.clearCookies();
  // The rate limit: 50 a second with bursts of 100 per address; 400 requests
  // in a row get some 429s with Retry-After (as long as they take under 6 s).
  let limited = 0, retryAfter = null;
  const t0 = Date.now();
  for (let i = 0; i < 400; i++) {
    const r = await page.request.get(`${d.url}/healthz`);
    if (r.status() === 429) { limited++; retryAfter = r.headers()["retry-after"]; }
  }
  if (Date.now() - t0 < 6000) {
    assert.ok(limited > 0, "some requests were limited");
    assert.equal(retryAfter, "1");
  }
  await page.close();
  await stop(d);
  assert.equal(d.exitCode, 0, d.out);
});
