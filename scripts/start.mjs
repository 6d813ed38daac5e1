// `npm start`: the relay on the local Workers runtime with local D1/Queues/Durable Objects/R2,
// a catch-all SMTP server as its next hop, the cron trigger run every minute, and a fresh API key printed with a
// ready-to-paste curl line. wrangler's start-up tables are left out (`npm start -- --verbose` shows everything).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { createOutputFilter, summariseMigrations } from "./dev-output.mjs";
import { ledgerShardBindings } from "./ledger-shards.mjs";
import { localCronIntervalMs, readCrons, startLocalCron } from "./local-cron.mjs";
import { startLocalSink } from "./local-sink.mjs";

const PORT = Number(process.env.PORT ?? 8787);
const SINK_PORT = Number(process.env.SINK_PORT ?? 1025);
const MAIL_DIR = ".local/mail";
const VERBOSE = process.argv.includes("--verbose");
const CRON_INTERVAL_MS = localCronIntervalMs(process.env.LOCAL_CRON_SECONDS);
/** Longer than the first retry step (60 s) and a DomainGate's longest "not yet", which also wait that long. */
const LOCAL_REDRIVE_GRACE_SECONDS = 120;
const base = `http://127.0.0.1:${PORT}`;

/** A variable set in .dev.vars (git-ignored, where wrangler looks for local secrets), or undefined. */
function devVar(name) {
  const existing = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
  return new RegExp(`^${name}\\s*=\\s*"?([^"\\n]+)"?`, "m").exec(existing)?.[1];
}

/** Reads a secret from .dev.vars, creating it if missing. */
function localSecret(name, make) {
  const found = devVar(name);
  if (found !== undefined) return found;
  const existing = existsSync(".dev.vars") ? readFileSync(".dev.vars", "utf8") : "";
  const value = make();
  writeFileSync(".dev.vars", `${existing}${existing && !existing.endsWith("\n") ? "\n" : ""}${name}="${value}"\n`);
  return value;
}

async function waitForHealth(child) {
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error("wrangler dev exited; see its output above");
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the relay did not come up within 120 s");
}

async function admin(path, body, token) {
  const r = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

await startLocalSink(SINK_PORT, MAIL_DIR);
console.log(`[sink] catch-all SMTP server on 127.0.0.1:${SINK_PORT}; messages are saved in ${MAIL_DIR}/`);

const token = localSecret("ADMIN_TOKEN", () => `local-admin-${randomBytes(16).toString("hex")}`);
// Signs VERP return paths, unsubscribe and tracking links.
localSecret("SIGNING_SECRET", () => randomBytes(32).toString("hex"));
// wrangler prints the migrations table once per migration applied: one line says the same. Every ledger shard
// (LEDGER_SHARDS, issue 17) gets the same migrations as DB.
for (const binding of ledgerShardBindings()) {
  const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", binding, "--local"], {
    stdio: ["ignore", VERBOSE ? "inherit" : "pipe", VERBOSE ? "inherit" : "pipe"],
    env: { ...process.env, CI: "1" },
    encoding: "utf8",
  });
  if (!VERBOSE) {
    const output = `${migrate.stdout ?? ""}${migrate.stderr ?? ""}`;
    const summary = migrate.status === 0 ? summariseMigrations(output) : null;
    if (summary) console.log(binding === "DB" ? summary : `${binding}: ${summary}`);
    else process.stderr.write(output);
  }
  if (migrate.status !== 0) process.exit(migrate.status ?? 1);
}

// Jobs in the local queue die with `wrangler dev`; the cron's re-drive from the ledger sends their mail again once
// it saw no activity for this long past its due time. Locally 2 minutes (deployed: 15), so a restart costs little.
const redriveGrace = process.env.REDRIVE_GRACE_SECONDS ?? devVar("REDRIVE_GRACE_SECONDS") ?? String(LOCAL_REDRIVE_GRACE_SECONDS);
// Local switches (issue 15): the catch-all sink is on loopback, and the quick start sends from a domain nobody
// verified in DNS. A deployed relay keeps wrangler.toml's defaults (no private destinations, verified domains only).
const localVars = [
  `NEXT_HOP_URL:smtp://127.0.0.1:${SINK_PORT}`,
  "ALLOW_PRIVATE_DESTINATIONS:127.0.0.0/8,::1/128",
  "REQUIRE_VERIFIED_DOMAINS:false",
  `REDRIVE_GRACE_SECONDS:${redriveGrace}`,
];
const child = spawn("wrangler", ["dev", "--ip", "127.0.0.1", "--port", String(PORT), ...localVars.flatMap((v) => ["--var", v])], {
  stdio: ["ignore", VERBOSE ? "inherit" : "pipe", VERBOSE ? "inherit" : "pipe"],
  env: {
    ...process.env,
    // The relay never reads request.cf; without this, wrangler fetches it from the internet at every start.
    CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false",
    // Keep wrangler's colours when the terminal has them, though its output now goes through a pipe.
    ...(process.stdout.isTTY && !process.env.NO_COLOR ? { FORCE_COLOR: process.env.FORCE_COLOR ?? "1" } : {}),
  },
});
const outputState = { starting: true };
if (!VERBOSE) {
  for (const [from, to] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ]) {
    const keep = createOutputFilter(outputState);
    createInterface({ input: from, crlfDelay: Infinity }).on("line", (line) => {
      if (keep(line)) to.write(`${line}\n`);
    });
  }
}
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    child.kill("SIGTERM");
    process.exit(0);
  });
}
child.on("exit", (code) => process.exit(code ?? 0));
// If a set-up step below fails, wrangler must not stay behind holding the port.
process.on("exit", () => child.exitCode === null && child.kill("SIGTERM"));

await waitForHealth(child);
const tenant = await admin("/admin/tenants", { id: "local", name: "Local development", domains: ["example.com"] }, token);
if (tenant.status !== 201 && tenant.status !== 409) throw new Error(`could not create the local tenant: ${JSON.stringify(tenant.body)}`);
const key = await admin("/admin/tenants/local/keys", { name: "npm start" }, token);
if (key.status !== 201) throw new Error(`could not create an API key: ${JSON.stringify(key.body)}`);

const crons = readCrons(readFileSync("wrangler.toml", "utf8"));
const cronLine =
  crons.length === 0
    ? "wrangler.toml has no cron triggers"
    : CRON_INTERVAL_MS > 0
      ? `runs every ${CRON_INTERVAL_MS / 1000} s here (deployed: ${crons.join(", ")}): scheduled sends, rollups, retention, expiry`
      : "off (LOCAL_CRON_SECONDS=0); trigger it with: curl '" + base + "/cdn-cgi/local/scheduled'";

const payload = JSON.stringify({ from: "hello@example.com", to: ["someone@example.net"], subject: "Hello from Edge Relay", text: "It works." });
console.log(`
Edge Relay is running at ${base}
  API key (tenant "local", may send from example.com): ${key.body.key}
  Admin token (in .dev.vars): ${token}
  Reporting page: ${base}/dashboard (sign in with the admin token)
  Cron trigger: ${cronLine}

Send a message:
  curl -s ${base}/v1/messages -H 'Authorization: Bearer ${key.body.key}' -H 'Content-Type: application/json' -d '${payload}'

Then see its state (use the id from the reply):
  curl -s ${base}/v1/messages/<id> -H 'Authorization: Bearer ${key.body.key}'
`);
outputState.starting = false;

if (crons.length && CRON_INTERVAL_MS > 0) {
  // The first run at once: after a restart it picks up what the cron would have done while the relay was stopped.
  let failing = false;
  let firstRun = true;
  startLocalCron({
    base,
    crons,
    intervalMs: CRON_INTERVAL_MS,
    onRun(results) {
      const bad = results.filter((r) => !r.ok);
      if (bad.length) console.error(`[cron] the scheduled handler failed: ${bad.map((r) => `${r.cron}: ${r.outcome}`).join("; ")} (its error is above)`);
      else if (firstRun || failing) console.log(`[cron] the scheduled handler ran (${results.map((r) => `${r.ms} ms`).join(", ")}); next in ${CRON_INTERVAL_MS / 1000} s`);
      failing = bad.length > 0;
      firstRun = false;
    },
  });
}
