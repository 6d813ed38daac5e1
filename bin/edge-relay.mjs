#!/usr/bin/env node
// `npx edge-relay bridge --relay https://...`: the Edge Relay command line (plain ESM, runs on Node 20+).
import { runCli } from "../src/bridge/cli.js";

try {
  process.exit(await runCli(process.argv.slice(2), process.env));
} catch (e) {
  process.stderr.write(`edge-relay: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
