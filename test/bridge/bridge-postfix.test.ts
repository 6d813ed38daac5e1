/**
 * Debian's Postfix as the bridge's client, the way users will run it: `relayhost = [127.0.0.1]:<bridge port>`
 * with SASL credentials (the API key as password) over STARTTLS. Mail submitted with Postfix's `sendmail`
 * travels Postfix → bridge → real relay (the Worker on the local runtime) → the SMTP sink.
 *
 * The test runs its own Postfix instance from a temporary config directory (`postfix -c`), so it does not
 * touch the system instance that .ci/postfix-setup.sh configures for the SMTP client tests. It needs root
 * (Postfix's master runs as root) and the postfix package with Cyrus SASL's PLAIN mechanism
 * (libsasl2-modules); without them it is skipped with the reason printed.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSmtpServer, type ScriptedServer } from "../support/peers";
import { selfSignedCertificate, startTestBridge, type TestBridge } from "./support/bridge";
import { startRelay, type TestRelay } from "./support/relay";

function postfixUnavailable(): string | null {
  if (process.platform !== "linux") return "Postfix tests run on Linux only";
  if (process.getuid?.() !== 0) return "a private Postfix instance needs root (its master process runs as root)";
  for (const bin of ["/usr/sbin/postfix", "/usr/sbin/postconf", "/usr/sbin/sendmail", "/usr/sbin/postqueue"]) {
    if (!existsSync(bin)) return `${bin} is missing: install Debian's postfix (.ci/postfix-setup.sh does)`;
  }
  if (!existsSync("/etc/postfix/master.cf")) return "/etc/postfix/master.cf is missing";
  const saslDirs = ["/usr/lib/sasl2", ...readdirSync("/usr/lib").map((d) => join("/usr/lib", d, "sasl2"))];
  if (!saslDirs.some((d) => existsSync(join(d, "libplain.so")) || existsSync(join(d, "libplain.so.2")))) {
    return "Cyrus SASL's PLAIN mechanism is missing: apt-get install libsasl2-modules (.ci/setup-postfix-bridge.sh does)";
  }
  return null;
}

const unavailable = postfixUnavailable();
if (unavailable) console.warn(`[bridge-postfix] skipped: ${unavailable}`);

function run(cmd: string, args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { input, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

/** For `postfix start/stop`: the master daemon would inherit and hold captured pipes open; its log tells what happened. */
function runDetached(cmd: string, args: string[]): number | null {
  return spawnSync(cmd, args, { stdio: "ignore", timeout: 60_000 }).status;
}

describe.skipIf(unavailable !== null)("Postfix → SMTP bridge → relay", () => {
  let sink: ScriptedServer;
  let relay: TestRelay;
  let bridge: TestBridge;
  let tenant: { tenantId: string; key: string; domain: string };
  let dir: string;
  let tls: ReturnType<typeof selfSignedCertificate>;
  let bridgePort: number;
  const conf = () => join(dir, "etc");
  const log = () => (existsSync(join(dir, "postfix.log")) ? readFileSync(join(dir, "postfix.log"), "utf8") : "");

  const postconf = (...settings: string[]) => {
    const r = run("postconf", ["-c", conf(), "-e", ...settings]);
    if (r.status !== 0) throw new Error(`postconf: ${r.out}`);
  };

  const sendmail = (from: string, to: string, subject: string) => {
    const msg = `From: ${from}\nTo: ${to}\nSubject: ${subject}\n\nSent by Postfix through the Edge Relay bridge.\n`;
    const r = run("sendmail", ["-C", conf(), "-f", from, "--", to], msg);
    if (r.status !== 0) throw new Error(`sendmail: ${r.out}`);
  };

  const startBridgeOn = (port: number, relayUrl: string) =>
    startTestBridge(["--listen", `127.0.0.1:${port}`, "--relay", relayUrl, "--tls-cert", tls.certFile, "--tls-key", tls.keyFile, "--hostname", "bridge.test.example"]);

  beforeAll(async () => {
    sink = await startSmtpServer({ name: "sink.postfix-bridge.test" });
    relay = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${sink.port}` });
    const domain = `pf-${randomBytes(4).toString("hex")}.example`;
    tenant = { ...(await relay.createTenant([domain])), domain };
    tls = selfSignedCertificate();
    bridge = await startBridgeOn(0, relay.url.href);
    bridgePort = bridge.port;

    dir = mkdtempSync(join(tmpdir(), "edge-relay-postfix-bridge-"));
    // The postfix user must reach the queue; the data directory must be its own.
    chmodSync(dir, 0o755);
    for (const d of ["etc", "queue", "data"]) mkdirSync(join(dir, d));
    expect(run("chown", ["postfix", join(dir, "data")]).status).toBe(0);
    copyFileSync("/etc/postfix/master.cf", join(conf(), "master.cf"));
    writeFileSync(join(conf(), "main.cf"), "# Edge Relay bridge test instance (written by test/bridge/bridge-postfix.test.ts)\n");
    if (existsSync("/etc/postfix/dynamicmaps.cf")) copyFileSync("/etc/postfix/dynamicmaps.cf", join(conf(), "dynamicmaps.cf"));
    postconf(
      "compatibility_level = 3.6",
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      `maillog_file = ${dir}/postfix.log`,
      `maillog_file_prefixes = ${dir}`,
      "myhostname = postfix-bridge.test.example",
      "mydestination =",
      "inet_interfaces = loopback-only",
      "inet_protocols = ipv4",
      "mynetworks = 127.0.0.0/8",
      "alias_maps =",
      "alias_database =",
      "local_transport = error:no local delivery in the bridge test instance",
      "smtputf8_enable = yes",
      // What the README tells users to set:
      `relayhost = [127.0.0.1]:${bridgePort}`,
      "smtp_sasl_auth_enable = yes",
      `smtp_sasl_password_maps = inline:{ [127.0.0.1]:${bridgePort}=apikey:${tenant.key} }`,
      "smtp_sasl_security_options = noanonymous",
      "smtp_sasl_tls_security_options = noanonymous",
      "smtp_tls_security_level = encrypt",
      // Retry deferred mail quickly in the test.
      "minimal_backoff_time = 1s",
      "maximal_backoff_time = 2s",
      "queue_run_delay = 1s",
    );
    // No listeners of its own (the system instance owns those ports), and no chroot (nothing is copied in).
    const services = run("postconf", ["-c", conf(), "-M"]).out.split("\n");
    for (const line of services) {
      const m = /^(\S+)\s+inet\s/.exec(line);
      if (m) run("postconf", ["-c", conf(), "-MX", `${m[1]}/inet`]);
    }
    expect(run("postconf", ["-c", conf(), "-F", "*/*/chroot = n"]).status).toBe(0);
    if (runDetached("postfix", ["-c", conf(), "start"]) !== 0) throw new Error(`postfix start failed:\n${log()}`);
  });

  afterAll(async () => {
    if (dir) {
      runDetached("postfix", ["-c", conf(), "stop"]);
      rmSync(dir, { recursive: true, force: true });
    }
    await bridge?.close();
    await relay?.dispose();
    await sink?.close();
  });

  async function waitForLog(pattern: RegExp, timeoutMs = 60_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = pattern.exec(log());
      if (m) return m[0];
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`postfix log did not show ${pattern} within ${timeoutMs} ms:\n${log().slice(-3000)}`);
  }

  async function arrived(subject: string) {
    await expect.poll(() => sink.messages.find((m) => m.raw.includes(`Subject: ${subject}`)) ?? null, { timeout: 60_000, interval: 200 }).not.toBeNull();
    return sink.messages.find((m) => m.raw.includes(`Subject: ${subject}`))!;
  }

  it("delivers mail submitted with sendmail through Postfix (STARTTLS + AUTH), the bridge and the relay", async () => {
    const subject = `postfix-${randomBytes(4).toString("hex")}`;
    sendmail(`app@${tenant.domain}`, "someone@example.net", subject);
    const got = await arrived(subject);
    expect(got.rcptTo).toEqual(["someone@example.net"]);
    expect(got.mailFrom).toContain(tenant.domain);
    // Postfix's own Received line, then the bridge's (TLS and AUTH: ESMTPSA).
    expect(got.raw).toMatch(/by postfix-bridge\.test\.example \(Postfix/);
    expect(got.raw).toMatch(/by bridge\.test\.example \(Edge Relay SMTP bridge\) with ESMTPSA/);
    const sent = await waitForLog(/to=<someone@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=sent \(250 2\.0\.0 Ok: queued as [0-9a-z]+\)/);
    const id = /queued as ([0-9a-z]+)/.exec(sent)![1]!;
    expect((await relay.call("GET", `/v1/messages/${id}`, tenant.key)).status).toBe(200);
  });

  it("a refusal by the relay reaches Postfix as 5xx and Postfix bounces the message", async () => {
    const subject = `refused-${randomBytes(4).toString("hex")}`;
    sendmail("someone@not-ours.example", "x@example.net", subject);
    await waitForLog(/to=<x@example\.net>, relay=127\.0\.0\.1.*status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.7\.1 sender refused by the relay/);
    expect(sink.messages.some((m) => m.raw.includes(subject))).toBe(false);
  });

  it("relay down: Postfix defers (4xx) and delivers once the relay is reachable again", async () => {
    await bridge.close();
    const down = await startBridgeOn(bridgePort, "http://127.0.0.1:9/");
    const subject = `later-${randomBytes(4).toString("hex")}`;
    try {
      sendmail(`app@${tenant.domain}`, "patient@example.net", subject);
      await waitForLog(/to=<patient@example\.net>, relay=127\.0\.0\.1.*status=deferred \(.*4\.\d\.\d/);
    } finally {
      await down.close();
    }
    expect(sink.messages.some((m) => m.raw.includes(subject))).toBe(false);
    bridge = await startBridgeOn(bridgePort, relay.url.href);
    expect(run("postqueue", ["-c", conf(), "-f"]).status).toBe(0);
    const got = await arrived(subject);
    expect(got.rcptTo).toEqual(["patient@example.net"]);
    await waitForLog(/to=<patient@example\.net>, relay=127\.0\.0\.1.*status=sent \(250 2\.0\.0 Ok: queued as/);
  });
});
