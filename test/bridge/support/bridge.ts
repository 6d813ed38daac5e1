/** Starts the bridge for tests from command-line style arguments, collecting its log lines. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseBridgeArgs, type BridgeOptions } from "../../../src/bridge/options.js";
import { startBridge, type Bridge, type BridgeDeps } from "../../../src/bridge/server.js";

export interface TestBridge extends Bridge {
  port: number;
  logs: string[];
}

/** `args` as on the command line; `--listen 127.0.0.1:0` unless given; `overrides` replace parsed options. */
export async function startTestBridge(args: string[], env: Record<string, string> = {}, deps: BridgeDeps = {}, overrides: Partial<BridgeOptions> = {}): Promise<TestBridge> {
  const argv = args.some((a) => a.startsWith("--listen")) ? args : ["--listen", "127.0.0.1:0", ...args];
  const parsed = parseBridgeArgs(argv, env);
  if (parsed.help) throw new Error("help requested");
  const logs: string[] = [];
  const bridge = await startBridge({ ...parsed.options, ...overrides }, { log: (line) => logs.push(line), ...deps });
  const port = bridge.addresses.listen?.port ?? bridge.addresses.listenTls?.port ?? 0;
  return { ...bridge, port, logs };
}

/** A throw-away self-signed certificate made with the openssl CLI (test only). */
export function selfSignedCertificate(): { certFile: string; keyFile: string; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), "edge-relay-bridge-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bridge.test.example", "-keyout", keyFile, "-out", certFile], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr || r.error?.message}`);
  return { certFile, keyFile, cert: readFileSync(certFile) };
}
