/**
 * Pending mail resumes after a restart of the local runtime, as under `npm start` (issue 25): the relay is stopped
 * while a message is in the middle of its SMTP transaction (its queue job dies with the runtime), started again on
 * the same local state, and the local cron loop of `npm start` runs the scheduled handler, whose re-drive from the
 * ledger sends the message again. The next hop ends up with exactly one copy.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readCrons, startLocalCron } from "../../scripts/local-cron.mjs";
import { startSmtpServer, type ScriptedServer } from "../support/peers";
import { startRelay, type TestRelay } from "./support/relay";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The re-drive from the ledger is the other half of issue 25 (branch `ledger`); until it is merged, a job lost with
// the runtime is never sent again, and this test says so by skipping with the reason.
const redrive = existsSync("src/delivery/redrive.ts");
if (!redrive) console.warn("issue 25: src/delivery/redrive.ts (the ledger's re-drive) is not merged yet: the restart test is skipped");

describe.skipIf(!redrive)("a restart of the local runtime (issue 25)", () => {
  const persist = mkdtempSync(join(tmpdir(), "edge-relay-restart-test-"));
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
    rmSync(persist, { recursive: true, force: true });
  });

  it("loses no mail: the local cron re-drives what was in flight, and the next hop gets it once", async () => {
    // Phase 1: the next hop stalls in DATA, so the message is in flight when the runtime stops.
    const stalled: ScriptedServer = await startSmtpServer({ rules: [{ stage: "data", stallMs: 600_000 }] });
    cleanup.push(() => stalled.close());
    const first: TestRelay = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${stalled.port}` }, { persist });
    const { key } = await first.createTenant(["restart.example"]);
    const sent = await first.call("POST", "/v1/messages", key, { from: "a@restart.example", to: ["b@dest.example"], subject: "survives a restart", text: "hi" });
    expect(sent.status).toBe(202);
    const id = (sent.body as { id: string }).id;
    for (let i = 0; i < 200 && stalled.connections.length === 0; i++) await sleep(100);
    expect(stalled.connections.length).toBeGreaterThan(0);
    await sleep(500);
    await first.dispose();

    // Phase 2: started again on the same state, with a next hop that works and npm start's cron loop.
    const sink: ScriptedServer = await startSmtpServer({ name: "sink.restart.test" });
    cleanup.push(() => sink.close());
    const second = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${sink.port}`, REDRIVE_GRACE_SECONDS: "1" }, { persist });
    cleanup.push(() => second.dispose());
    const cron = startLocalCron({ base: second.url, crons: readCrons(readFileSync("wrangler.toml", "utf8")), intervalMs: 2_000 });
    cleanup.push(async () => cron.stop());
    let status = "";
    for (let i = 0; i < 300 && status !== "delivered"; i++) {
      await sleep(200);
      status = ((await second.call("GET", `/v1/messages/${id}`, key)).body as { status?: string }).status ?? "";
    }
    expect(status).toBe("delivered");
    await sleep(3_000);
    expect(sink.messages.filter((m) => m.raw.includes("survives a restart")).length).toBe(1);
  });
});
