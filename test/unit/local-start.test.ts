/**
 * `npm start`'s pieces in plain Node: the local cron loop against a real HTTP server standing in for wrangler's
 * trigger endpoint, and what is kept of wrangler's real output (fixtures captured from wrangler 4.164.0).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { createOutputFilter, stripAnsi, summariseMigrations } from "../../scripts/dev-output.mjs";
import { LOCAL_SCHEDULED_PATH, localCronIntervalMs, readCrons, startLocalCron, triggerScheduled, type CronResult } from "../../scripts/local-cron.mjs";

const fixture = (name: string) => readFileSync(`test/fixtures/npm-start/${name}`, "utf8");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FakeTrigger {
  base: string;
  hits: URL[];
  maxConcurrent: number;
  close(): Promise<void>;
}

/** An HTTP server answering like Miniflare's /cdn-cgi/local/scheduled?format=json, after `delayMs`. */
async function fakeTrigger(outcome = "ok", delayMs = 0): Promise<FakeTrigger> {
  const hits: URL[] = [];
  let concurrent = 0;
  const state = { maxConcurrent: 0 };
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    concurrent++;
    state.maxConcurrent = Math.max(state.maxConcurrent, concurrent);
    hits.push(new URL(req.url ?? "/", "http://x"));
    await sleep(delayMs);
    concurrent--;
    res.writeHead(outcome === "ok" ? 200 : 500, { "content-type": "application/json" }).end(JSON.stringify({ outcome, noRetry: false }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    get maxConcurrent() {
      return state.maxConcurrent;
    },
    close: () => new Promise((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

const open: { close(): Promise<void> }[] = [];
const stops: (() => void)[] = [];
afterEach(async () => {
  stops.splice(0).forEach((s) => s());
  await Promise.all(open.splice(0).map((o) => o.close()));
});

describe("npm start: the local cron", () => {
  it("reads the cron triggers of wrangler.toml", () => {
    expect(readCrons(readFileSync("wrangler.toml", "utf8"))).toEqual(["*/5 * * * *"]);
    expect(readCrons(`[triggers]\ncrons = ["*/5 * * * *", '0 3 * * *']\n`)).toEqual(["*/5 * * * *", "0 3 * * *"]);
    expect(readCrons(`name = "x"\n# crons = ["* * * * *"]\n`)).toEqual([]);
    expect(readCrons(`[triggers]\ncrons = []\n`)).toEqual([]);
  });

  it("runs every minute unless LOCAL_CRON_SECONDS says otherwise, and refuses nonsense", () => {
    expect(localCronIntervalMs(undefined)).toBe(60_000);
    expect(localCronIntervalMs("")).toBe(60_000);
    expect(localCronIntervalMs("15")).toBe(15_000);
    expect(localCronIntervalMs("0")).toBe(0);
    expect(() => localCronIntervalMs("-1")).toThrow(/LOCAL_CRON_SECONDS/);
    expect(() => localCronIntervalMs("soon")).toThrow(/LOCAL_CRON_SECONDS/);
  });

  it("triggers the scheduled handler at once for every cron, then on the interval, until stopped", async () => {
    const t = await fakeTrigger();
    open.push(t);
    const runs: CronResult[][] = [];
    const cron = startLocalCron({ base: t.base, crons: ["*/5 * * * *", "0 3 * * *"], intervalMs: 150, onRun: (r) => runs.push(r) });
    stops.push(cron.stop);
    const first = await cron.first;
    expect(first.map((r) => [r.cron, r.ok, r.outcome])).toEqual([
      ["*/5 * * * *", true, "ok"],
      ["0 3 * * *", true, "ok"],
    ]);
    expect(t.hits[0]!.pathname).toBe(LOCAL_SCHEDULED_PATH);
    expect(t.hits[0]!.searchParams.get("cron")).toBe("*/5 * * * *");
    expect(t.hits[0]!.searchParams.get("format")).toBe("json");
    expect(Math.abs(Number(t.hits[0]!.searchParams.get("time")) - Date.now())).toBeLessThan(5_000);
    expect(t.hits[1]!.searchParams.get("cron")).toBe("0 3 * * *");
    await sleep(700);
    cron.stop();
    const hitsAtStop = t.hits.length;
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(hitsAtStop).toBeGreaterThanOrEqual(6);
    await sleep(400);
    expect(t.hits.length).toBeLessThanOrEqual(hitsAtStop + 2);
  });

  it("never overlaps runs: a tick while the handler still runs is skipped", async () => {
    const t = await fakeTrigger("ok", 400);
    open.push(t);
    const cron = startLocalCron({ base: t.base, crons: ["*/5 * * * *"], intervalMs: 50 });
    stops.push(cron.stop);
    await sleep(1_000);
    cron.stop();
    expect(t.maxConcurrent).toBe(1);
    expect(t.hits.length).toBeGreaterThanOrEqual(2);
    expect(t.hits.length).toBeLessThanOrEqual(4);
  });

  it("reports a handler that threw and a relay that is not there", async () => {
    const t = await fakeTrigger("exception");
    open.push(t);
    expect(await triggerScheduled(t.base, ["*/5 * * * *"])).toMatchObject([{ ok: false, outcome: "exception" }]);
    const gone = await fakeTrigger();
    await gone.close();
    const [r] = await triggerScheduled(gone.base, ["*/5 * * * *"]);
    expect(r!.ok).toBe(false);
    expect(r!.outcome).toMatch(/^unreachable/);
  });

  it("tries once more when the connection drops (a kept-alive socket the server just closed)", async () => {
    let requests = 0;
    const server = createServer((req, res) => {
      if (++requests === 1) return req.socket.destroy();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ outcome: "ok" }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    open.push({ close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) });
    const [r] = await triggerScheduled(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, ["*/5 * * * *"]);
    expect(r).toMatchObject({ ok: true, outcome: "ok" });
    expect(requests).toBe(2);
  });

  it("does nothing without crons", async () => {
    const t = await fakeTrigger();
    open.push(t);
    const cron = startLocalCron({ base: t.base, crons: [], intervalMs: 20 });
    stops.push(cron.stop);
    expect(await cron.first).toEqual([]);
    await sleep(100);
    expect(t.hits).toEqual([]);
  });
});

/** The lines a filter keeps of a text. */
function kept(text: string, state = { starting: true }): string[] {
  const keep = createOutputFilter(state);
  return text.split("\n").filter((l) => keep(l)).map(stripAnsi);
}

describe("npm start: what it prints of wrangler's output", () => {
  it("says in one line what the migrations table said seven times", () => {
    expect(summariseMigrations(fixture("d1-migrations-apply.txt"))).toBe("[d1] applied 7 migrations to the local database (0001_init.sql … 0007_streams.sql)");
    expect(summariseMigrations("✅ No migrations to apply!")).toBe("[d1] the local database is up to date");
    // Output it does not understand is printed as it was (the caller gets null).
    expect(summariseMigrations("something else entirely")).toBeNull();
  });

  it("counts only the migrations still to apply, not every row of the status tables", () => {
    const two = fixture("d1-migrations-apply.txt")
      .replace(/Migrations to be applied:[\s\S]*?About to apply 7/, "Migrations to be applied:\n│ 0006_tracking.sql │\n│ 0007_streams.sql  │\n? About to apply 2");
    expect(summariseMigrations(two)).toBe("[d1] applied 2 migrations to the local database (0006_tracking.sql, 0007_streams.sql)");
  });

  it("drops the bindings tables, the Request.cf warnings, the cron warning and its own set-up requests", () => {
    const out = kept(fixture("wrangler-dev.txt"));
    const all = fixture("wrangler-dev.txt").split("\n").length;
    expect(all).toBeGreaterThan(80);
    expect(out.filter((l) => l.trim() !== "")).toEqual([
      "Cloudflare collects anonymous telemetry about your usage of Wrangler. Learn more at https://github.com/cloudflare/workers-sdk/tree/main/packages/wrangler/telemetry.md",
    ]);
  });

  it("keeps errors, other warnings, the Worker's own logs and every request once started", () => {
    const state = { starting: true };
    const keep = createOutputFilter(state);
    const lines = [
      "Your Worker has access to the following bindings:",
      "env.DB (edge-relay)          D1 Database        local",
      "",
      "[wrangler:info] POST /admin/tenants 201 Created (52ms)",
      "\u001b[31m✘ [ERROR]\u001b[0m Uncaught TypeError: boom",
      "    at handler (src/index.ts:10:5)",
      "▲ [WARNING] The local runtime is out of date",
      "dashboard error Error: no such table: report_watermarks",
      "report rollups are 1200 events behind after this run",
      "[wrangler:info] GET /health 200 OK (3ms)",
      "[wrangler:info] GET /cdn-cgi/local/scheduled 200 OK (300ms)",
    ];
    const before = lines.filter((l) => keep(l)).map(stripAnsi);
    expect(before).toEqual([
      "✘ [ERROR] Uncaught TypeError: boom",
      "    at handler (src/index.ts:10:5)",
      "▲ [WARNING] The local runtime is out of date",
      "dashboard error Error: no such table: report_watermarks",
      "report rollups are 1200 events behind after this run",
    ]);
    state.starting = false;
    expect(keep("[wrangler:info] POST /admin/tenants 201 Created (40ms)")).toBe(true);
    expect(keep("[wrangler:info] POST /v1/messages 202 Accepted (154ms)")).toBe(true);
    expect(keep("[wrangler:info] QUEUE edge-relay-outbox-priority 1/1 (414ms)")).toBe(true);
  });

  it("lets a reworded warning end after a few lines instead of swallowing what follows", () => {
    const out = kept(
      ["▲ [WARNING] Scheduled Workers are not automatically triggered during local development.", ...Array.from({ length: 12 }, (_, i) => `line ${i}`)].join("\n"),
    );
    expect(out.length).toBeGreaterThanOrEqual(3);
    expect(out.at(-1)).toBe("line 11");
  });
});
