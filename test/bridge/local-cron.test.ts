/**
 * `npm start`'s cron loop against the real Worker (wrangler's unstable_startWorker on local D1/Queues, as the
 * bridge tests start it): wrangler's local trigger endpoint runs the Worker's scheduled handler, and the
 * handler's housekeeping happens — here the rollups catch up with the event log, read straight from the
 * local D1 database with `wrangler d1 execute --local`.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCrons, startLocalCron } from "../../scripts/local-cron.mjs";
import { startSmtpServer, type ScriptedServer } from "../support/peers";
import { startRelay, type TestRelay } from "./support/relay";

const WRANGLER = resolve("node_modules/wrangler/bin/wrangler.js");

/** One row from the Worker's local D1 database, read by a second process as an operator would. */
function d1Row<T>(persist: string, sql: string): T {
  const r = spawnSync(process.execPath, [WRANGLER, "d1", "execute", "DB", "--local", "--persist-to", persist, "--json", "--command", sql], {
    env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`wrangler d1 execute failed:\n${r.stdout}\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { results: T[] }[])[0]!.results[0]!;
}

const WATERMARK_SQL = "SELECT last_event_id AS watermark, (SELECT MAX(id) FROM events) AS top FROM report_watermarks WHERE name = 'rollup'";

describe("npm start's local cron against the real Worker", () => {
  let relay: TestRelay;
  let sink: ScriptedServer;

  beforeAll(async () => {
    sink = await startSmtpServer({ name: "sink.cron.test" });
    relay = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${sink.port}` });
  });

  afterAll(async () => {
    await relay?.dispose();
    await sink?.close();
  });

  it("runs the scheduled handler, whose rollup pass then counts the events written since", async () => {
    const { key } = await relay.createTenant(["cron.example"]);
    const sent = await relay.call("POST", "/v1/messages", key, { from: "a@cron.example", to: ["b@dest.example"], subject: "cron", text: "hi" });
    expect(sent.status).toBe(202);
    const id = (sent.body as { id: string }).id;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = ((await relay.call("GET", `/v1/messages/${id}`, key)).body as { status?: string }).status;
      if (status === "delivered") break;
      if (Date.now() > deadline) throw new Error(`message ${id} was not delivered: ${status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // Nothing has folded the events in yet: no page was loaded and wrangler never runs the cron by itself.
    const before = d1Row<{ watermark: number; top: number }>(relay.persist, WATERMARK_SQL);
    expect(before.top).toBeGreaterThan(before.watermark);

    const crons = readCrons(readFileSync("wrangler.toml", "utf8"));
    expect(crons.length).toBeGreaterThan(0);
    const cron = startLocalCron({ base: relay.url, crons, intervalMs: 0 });
    const results = await cron.first;
    cron.stop();
    expect(results.map((r) => r.outcome)).toEqual(crons.map(() => "ok"));

    // The handler hands its work to waitUntil: wait for the rollup pass to land.
    let after = d1Row<{ watermark: number; top: number }>(relay.persist, WATERMARK_SQL);
    for (let i = 0; i < 20 && after.watermark < before.top; i++) {
      await new Promise((r) => setTimeout(r, 500));
      after = d1Row<{ watermark: number; top: number }>(relay.persist, WATERMARK_SQL);
    }
    expect(after.watermark).toBeGreaterThanOrEqual(before.top);
  });
});
