/**
 * Starts the relay on the local Workers runtime for the benchmarks, in one of two ways:
 * - "miniflare": the Worker bundled with esbuild and run by Miniflare (workerd) directly; clients talk to
 *   workerd's own HTTP socket. Nothing but the runtime sits between the client and the Worker.
 * - "wrangler-dev": `wrangler dev`, as `npm start` runs it; requests pass wrangler's proxy worker first.
 * Both use the bindings of wrangler.toml, persistence in a temp dir, and apply the D1 migrations.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join } from "node:path";
import { bundleWorker } from "./bundle-size.mjs";
import { descendantPids } from "./procstat.mjs";

const require = createRequire(import.meta.url);

async function loadMiniflare() {
  // miniflare ships with wrangler; resolve it through wrangler so a fresh `npm install` finds it.
  const path = createRequire(require.resolve("wrangler")).resolve("miniflare");
  return import(path);
}

function migrationFiles(root) {
  const dir = join(root, "migrations");
  return readdirSync(dir)
    .filter((f) => /^\d{4}_.*\.sql$/.test(f))
    .sort()
    .map((f) => ({ name: f, sql: readFileSync(join(dir, f), "utf8") }));
}

/** Applies migrations/NNNN_*.sql in order through a D1 binding. */
async function applyMigrations(db, root) {
  const { unstable_splitSqlQuery } = await import("wrangler");
  for (const m of migrationFiles(root)) {
    const statements = unstable_splitSqlQuery(m.sql).filter((s) => s.trim());
    if (statements.length) await db.batch(statements.map((s) => db.prepare(s)));
  }
}

/** A TCP port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForHealth(base, isAlive) {
  for (let i = 0; i < 900; i++) {
    if (!isAlive()) throw new Error("the relay process exited before it became healthy");
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the relay at ${base} did not become healthy within 180 s`);
}

/** What a local relay needs that a deployed one must not have: loopback peers, unverified sender domains. */
export const LOCAL_RELAY_VARS = { ALLOW_PRIVATE_DESTINATIONS: "127.0.0.0/8,::1/128", REQUIRE_VERIFIED_DOMAINS: "false" };

/**
 * `shards` > 1 (miniflare only) adds ledger shards LEDGER_1.. as local D1 databases, lists them with DB in
 * LEDGER_SHARDS and migrates each (issue 17).
 * @param {{ root: string, mode: "miniflare" | "wrangler-dev", vars: Record<string,string>, persistDir: string, port?: number, shards?: number }} opts
 * @returns {Promise<{ url: string, mode: string, pids: () => number[], dispose: () => Promise<void> }>}
 */
export async function startRelay(opts) {
  // The bench's peers are on loopback and its domains are never DNS-verified: the local switches (issue 15).
  opts = { ...opts, vars: { ...LOCAL_RELAY_VARS, ...opts.vars } };
  if (opts.mode === "wrangler-dev") return startWranglerDev(opts);
  const { Miniflare, convertV4MiniflareOptions, Log, LogLevel } = await loadMiniflare();
  const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
  // modulesRules/rootPath describe wrangler's own bundling; we hand Miniflare one finished ES module instead.
  const { modulesRules: _rules, rootPath: _root, ...workerOptions } = unstable_getMiniflareWorkerOptions(join(opts.root, "wrangler.toml")).workerOptions;
  const script = new TextDecoder().decode(await bundleWorker(opts.root));
  const extraShards = Array.from({ length: Math.max(0, (opts.shards ?? 1) - 1) }, (_, i) => `LEDGER_${i + 1}`);
  if (extraShards.length) {
    workerOptions.d1Databases = { ...workerOptions.d1Databases, ...Object.fromEntries(extraShards.map((b) => [b, { id: `edge-relay-bench-${b.toLowerCase()}` }])) };
    opts = { ...opts, vars: { ...opts.vars, LEDGER_SHARDS: ["DB", ...extraShards].join(",") } };
  }
  const mf = new Miniflare(convertV4MiniflareOptions({
    workers: [
      {
        ...workerOptions,
        name: "edge-relay",
        modules: true,
        script,
        scriptPath: join(opts.root, "src/index.js"),
        bindings: { ...workerOptions.bindings, ...opts.vars },
      },
    ],
    host: "127.0.0.1",
    port: opts.port ?? 0,
    resourcePersistencePath: opts.persistDir,
    ...(process.env.BENCH_DEBUG ? { log: new Log(LogLevel.DEBUG) } : {}),
    // BENCH_INSPECTOR_PORT=N opens the V8 inspector of the Worker's isolate there (a CPU profile of the relay).
    ...(process.env.BENCH_INSPECTOR_PORT ? { inspectorPort: Number(process.env.BENCH_INSPECTOR_PORT) } : {}),
    // Worker console output: errors always (a broken relay should say why), the rest with BENCH_DEBUG.
    handleStructuredLogs: (log) => {
      if (log.level === "error" || log.level === "warn" || process.env.BENCH_DEBUG) process.stderr.write(`[workerd:${log.level}] ${log.message}\n`);
    },
  }));
  const url = (await mf.ready).toString().replace(/\/$/, "");
  const db = await mf.getD1Database("DB");
  await applyMigrations(db, opts.root);
  for (const b of extraShards) await applyMigrations(await mf.getD1Database(b), opts.root);
  await waitForHealth(url, () => true);
  return {
    url,
    mode: "miniflare",
    /** The relay's D1 database, for checks from outside (Miniflare's binding proxy). */
    db,
    pids: () => descendantPids(process.pid, "workerd"),
    dispose: () => mf.dispose(),
  };
}

async function startWranglerDev(opts) {
  const { spawnSync } = await import("node:child_process");
  const port = opts.port ?? (await freePort());
  const wrangler = join(opts.root, "node_modules/.bin/wrangler");
  const env = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" };
  const migrate = spawnSync(wrangler, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", opts.persistDir], { cwd: opts.root, env, encoding: "utf8" });
  if (migrate.status !== 0) throw new Error(`wrangler d1 migrations apply failed:\n${migrate.stdout}\n${migrate.stderr}`);
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", opts.persistDir, "--log-level", process.env.BENCH_DEBUG ? "debug" : "error", "--show-interactive-dev-session=false"];
  for (const [k, v] of Object.entries(opts.vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(wrangler, args, { cwd: opts.root, env, stdio: ["ignore", process.env.BENCH_DEBUG ? "inherit" : "ignore", "inherit"], detached: false });
  const url = `http://127.0.0.1:${port}`;
  await waitForHealth(url, () => child.exitCode === null);
  return {
    url,
    mode: "wrangler-dev",
    pids: () => descendantPids(child.pid, "workerd"),
    dispose: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
        setTimeout(() => child.exitCode === null && child.kill("SIGKILL"), 5000).unref();
      }),
  };
}
