#!/usr/bin/env node
/**
 * `npm run bench:report`: how fast each page of the reporting page renders with 100,000 events in D1.
 * Seeds a fresh local D1 (temporary directory, migrations applied) with messages, recipients and events spread
 * over 30 days for 5 tenants and 40 recipient domains, plus suppressions and webhook attempts; starts the real
 * Worker with wrangler's unstable_startWorker; lets the cron trigger fold the events into the rollups; signs in
 * through the login form; then loads every page repeatedly and prints the median (and p95) per page.
 * Options: --events N (default 100000) --loads N (default 25) --screenshot PATH (a 1280px overview in Chromium).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { unstable_startWorker } from "wrangler";

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const TARGET_EVENTS = Number(opt("--events", "100000"));
const LOADS = Number(opt("--loads", "25"));
const SCREENSHOT = opt("--screenshot", null);
const BUDGET_MS = 200;
const WRANGLER = resolve("node_modules/wrangler/bin/wrangler.js");
const ADMIN_TOKEN = "bench-admin-token-0123456789";

// Deterministic pseudo-random numbers so every run seeds the same data.
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const q = (s) => (s === null ? "NULL" : `'${String(s).replace(/'/g, "''")}'`);

function seedSql(now) {
  const tenants = ["acme", "globex", "initech", "umbrella", "hooli"];
  const domains = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "gmx.de", "web.de", "orange.fr", "comcast.net", "aol.com"]
    .concat(Array.from({ length: 30 }, (_, i) => `corp${i}.example`));
  const hosts = ["smtp.upstream.example:587", "mx.fallback.example:2525"];
  const out = [];
  const tenantsSql = tenants.map((t) => `(${q(t)}, ${q(t[0].toUpperCase() + t.slice(1))}, ${now - 40 * 86400000})`);
  out.push(`INSERT INTO tenants (id, name, created_at) VALUES ${tenantsSql.join(", ")};`);
  const msgs = [];
  const rcpts = [];
  const events = [];
  let n = 0;
  let i = 0;
  while (n < TARGET_EVENTS) {
    i++;
    const id = (now - 31 * 86400000 + i).toString(36).padStart(9, "0") + String(i).padStart(12, "0");
    const tenant = pick(tenants);
    // Spread over 30 days, denser in the recent past, with a daily rhythm.
    const age = Math.floor(Math.pow(rand(), 1.6) * 30 * 86400000);
    const created = now - age;
    const domain = pick(domains);
    const address = `user${i}@${domain}`;
    const host = rand() < 0.8 ? hosts[0] : hosts[1];
    const roll = rand();
    msgs.push(`(${q(id)}, ${q(tenant)}, ${q(`news@${tenant}.example`)}, ${q(`news@${tenant}.example`)}, ${q(`Order ${i} confirmation`)}, 2048, ${q(JSON.stringify(i % 7 === 0 ? ["newsletter"] : ["receipt"]))}, ${created})`);
    events.push(`(${q(id)}, ${q(tenant)}, NULL, NULL, 'accepted', ${created}, NULL, NULL, NULL)`);
    events.push(`(${q(id)}, ${q(tenant)}, 0, ${q(address)}, 'queued', ${created}, NULL, NULL, NULL)`);
    n += 2;
    let at = created + 300 + Math.floor(rand() * 4000);
    let status;
    if (roll < 0.12) {
      events.push(`(${q(id)}, ${q(tenant)}, 0, ${q(address)}, 'deferred', ${at}, 451, ${q("4.7.1 try again later")}, ${q(host)})`);
      n++;
      at += 60000 + Math.floor(rand() * 3600000);
    }
    if (age < 3600000 && roll < 0.03) status = "deferred";
    else if (roll < 0.025) status = "bounced";
    else if (roll < 0.03) status = "expired";
    else status = "delivered";
    if (status !== "deferred") {
      events.push(`(${q(id)}, ${q(tenant)}, 0, ${q(address)}, ${q(status)}, ${at}, ${status === "bounced" ? 550 : status === "delivered" ? 250 : "NULL"}, ${q(status === "bounced" ? "5.1.1 user unknown" : status === "delivered" ? "2.0.0 Ok: queued" : "gave up")}, ${q(host)})`);
      n++;
      if (status === "delivered" && rand() < 0.0008) {
        events.push(`(${q(id)}, ${q(tenant)}, 0, ${q(address)}, 'complained', ${at + 3600000}, NULL, ${q("abuse report")}, NULL)`);
        n++;
      }
    }
    rcpts.push(`(${q(id)}, 0, ${q(address)}, ${q(domain)}, ${q(status)}, ${status === "deferred" ? 1 : 1}, ${at}, ${status === "deferred" ? "NULL" : at})`);
  }
  const chunks = (rows, head) => {
    for (let k = 0; k < rows.length; k += 400) out.push(`${head} ${rows.slice(k, k + 400).join(",\n")};`);
  };
  chunks(msgs, "INSERT INTO messages (id, tenant_id, mail_from, header_from, subject, size_bytes, tags, created_at) VALUES");
  chunks(rcpts, "INSERT INTO recipients (message_id, idx, address, domain, status, attempts, updated_at, final_at) VALUES");
  chunks(events, "INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, code, text, host) VALUES");
  const sup = Array.from({ length: 2000 }, (_, k) => `(${q(pick(tenants))}, ${q(`blocked${k}@${pick(domains)}`)}, 'all', ${q(pick(["hard_bounce", "complaint", "unsubscribe", "manual"]))}, NULL, ${now - k * 60000})`);
  chunks(sup, "INSERT OR IGNORE INTO suppressions (tenant_id, address, scope, reason, detail, created_at) VALUES");
  out.push(`INSERT INTO webhooks (id, tenant_id, url, event_types, secret, created_at, updated_at) VALUES ('wh1', 'acme', 'https://hooks.acme.example/relay', '["*"]', 'whsec_x', ${now}, ${now});`);
  const att = Array.from({ length: 1000 }, (_, k) => `('wh1', 'acme', ${q(`wh1-${k}`)}, 'delivered', NULL, 1, ${q(k % 10 ? "delivered" : "retrying")}, ${k % 10 ? 200 : 503}, NULL, ${20 + (k % 50)}, ${now - k * 1000})`);
  chunks(att, "INSERT INTO webhook_attempts (webhook_id, tenant_id, delivery_id, event_type, message_id, attempt, outcome, status_code, error, duration_ms, at) VALUES");
  return { sql: out.join("\n"), events: n, messages: msgs.length, sample: { id: msgs.length ? (now - 31 * 86400000 + 1).toString(36).padStart(9, "0") + String(1).padStart(12, "0") : "", address: "user1@" } };
}

function wrangler(args) {
  const r = spawnSync(process.execPath, [WRANGLER, ...args], { env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" }, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`wrangler ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { median: s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2, p95: at(0.95) };
};

const persist = mkdtempSync(join(tmpdir(), "edge-relay-bench-report-"));
const now = Date.now();
let worker;
try {
  process.stdout.write(`seeding ${TARGET_EVENTS.toLocaleString("en-US")} events into a fresh local D1 (${persist}) ... `);
  const t0 = Date.now();
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist]);
  const seeded = seedSql(now);
  const file = join(persist, "seed.sql");
  writeFileSync(file, seeded.sql);
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", persist, "--file", file]);
  console.log(`${seeded.events.toLocaleString("en-US")} events, ${seeded.messages.toLocaleString("en-US")} messages in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  worker = await unstable_startWorker({
    config: "wrangler.toml",
    bindings: { ADMIN_TOKEN: { type: "plain_text", value: ADMIN_TOKEN } },
    dev: { persist, server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false, logLevel: "error", testScheduled: true },
  });
  await worker.ready;
  const base = await worker.url;
  const url = (p) => new URL(p, base).toString();

  const t1 = Date.now();
  const cron = await fetch(url("/__scheduled?cron=*/5+*+*+*+*"));
  if (!cron.ok) throw new Error(`cron trigger: ${cron.status}`);
  console.log(`cron trigger (rollups of every event) took ${((Date.now() - t1) / 1000).toFixed(1)} s`);

  // Sign in through the form, as a browser would.
  const form = await fetch(url("/dashboard/login"));
  const nonceCookie = form.headers.getSetCookie().find((c) => c.startsWith("__Host-er_login="))?.split(";")[0];
  const nonce = /name="nonce" value="([^"]+)"/.exec(await form.text())?.[1];
  const login = await fetch(url("/dashboard/login"), {
    method: "POST",
    redirect: "manual",
    headers: { cookie: nonceCookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ nonce, token: ADMIN_TOKEN, next: "/dashboard" }),
  });
  const cookie = login.headers.getSetCookie().find((c) => c.startsWith("__Host-er_session="))?.split(";")[0];
  if (!cookie) throw new Error(`login failed: ${login.status}`);

  const first = await (await fetch(url("/dashboard/messages?field=sender&q=news%40acme.example"), { headers: { cookie } })).text();
  const messageId = /href="\/dashboard\/messages\/([0-9a-z]+)/.exec(first)?.[1];
  const recipient = /<td class="mono">(user\d+@[^<]+)<\/td>/.exec(first)?.[1] ?? "user1@gmail.com";
  const month = await (await fetch(url("/dashboard?window=30d"), { headers: { cookie } })).text();
  const shown = /data-metric="accepted"><div class="label">[^<]*<\/div><div class="value">([\d,]+)/.exec(month)?.[1];
  console.log(`the 30-day overview counts ${shown} accepted messages of ${seeded.messages.toLocaleString("en-US")} seeded (those inside the window)`);
  const pages = [
    ["overview, all tenants, 24h", "/dashboard"],
    ["overview, all tenants, 1h", "/dashboard?window=1h"],
    ["overview, all tenants, 30d", "/dashboard?window=30d"],
    ["overview, one tenant, 7d", "/dashboard?tenant=acme&window=7d"],
    ["destinations, 30d", "/dashboard/destinations?window=30d"],
    ["messages, newest", "/dashboard/messages"],
    ["messages, by recipient", `/dashboard/messages?field=recipient&q=${encodeURIComponent(recipient)}`],
    ["messages, by sender", "/dashboard/messages?field=sender&q=news%40acme.example"],
    ["messages, by tag", "/dashboard/messages?field=tag&q=newsletter"],
    ["messages, by status", "/dashboard/messages?tenant=globex&field=status&q=bounced"],
    ["message page", `/dashboard/messages/${messageId}`],
    ["suppressions", "/dashboard/suppressions"],
    ["webhooks", "/dashboard/webhooks"],
  ];
  console.log(`\n${LOADS} loads per page after one warm-up; server-rendered HTML over HTTP to the local Worker (wrangler dev runtime):\n`);
  console.log(`${"page".padEnd(32)} ${"median".padStart(9)} ${"p95".padStart(9)}  ${"bytes".padStart(7)}`);
  let worst = 0;
  for (const [name, path] of pages) {
    const warm = await fetch(url(path), { headers: { cookie } });
    if (warm.status !== 200) throw new Error(`${path}: ${warm.status}`);
    const size = (await warm.text()).length;
    const times = [];
    for (let k = 0; k < LOADS; k++) {
      const s = performance.now();
      const r = await fetch(url(path), { headers: { cookie } });
      await r.text();
      times.push(performance.now() - s);
    }
    const { median, p95 } = stats(times);
    worst = Math.max(worst, median);
    console.log(`${name.padEnd(32)} ${`${median.toFixed(1)} ms`.padStart(9)} ${`${p95.toFixed(1)} ms`.padStart(9)}  ${String(size).padStart(7)}${median > BUDGET_MS ? "  OVER BUDGET" : ""}`);
  }
  console.log(`\nslowest median ${worst.toFixed(1)} ms; budget ${BUDGET_MS} ms per page: ${worst <= BUDGET_MS ? "met" : "NOT met"}`);

  if (SCREENSHOT) {
    const { chromium } = await import("playwright-core");
    if (!existsSync("/usr/bin/chromium")) throw new Error("--screenshot needs Debian's chromium at /usr/bin/chromium");
    const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(url("/dashboard/login"));
    await page.fill('input[name="token"]', ADMIN_TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.pathname === "/dashboard");
    await page.goto(url("/dashboard?window=7d"));
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await browser.close();
    console.log(`screenshot of the overview saved to ${SCREENSHOT}`);
  }
  if (worst > BUDGET_MS) process.exitCode = 1;
} finally {
  await worker?.dispose();
  rmSync(persist, { recursive: true, force: true });
}
