/**
 * The Postfix side of `npm run bench`: a private Postfix instance (its own config, queue and data directories in
 * a temp dir, its own smtpd port; the system's /etc/postfix and any running instance are left alone) with the
 * bench sink as `relayhost`, fed by Postfix's own `smtp-source` with the same message count, size and
 * concurrency. End to end = from the first message handed to smtpd until the sink holds the last one.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForSink } from "./phase.mjs";
import { round } from "./stats.mjs";

const POSTFIX = "/usr/sbin/postfix";
const POSTCONF = "/usr/sbin/postconf";
const SMTP_SOURCE = "/usr/sbin/smtp-source";
const TICKS_PER_SECOND = 100;

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

/** Why this machine cannot run the Postfix comparison, or null when it can. */
export function postfixUnavailable() {
  for (const bin of [POSTFIX, POSTCONF, SMTP_SOURCE]) if (!existsSync(bin)) return `${bin} is not installed (apt-get install postfix)`;
  if (process.getuid?.() !== 0) return "the Postfix master must be started as root (run the bench as root, or skip with --no-postfix)";
  return null;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** user+system CPU seconds of the instance: the master (with its reaped children) and the live daemons. */
function instanceCpuSeconds(masterPid) {
  let ticks = 0;
  const read = (pid) => {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, "utf8");
      return s.slice(s.lastIndexOf(")") + 2).split(" ");
    } catch {
      return null;
    }
  };
  const m = read(masterPid);
  if (m) ticks += Number(m[11]) + Number(m[12]) + Number(m[13]) + Number(m[14]);
  for (const d of readdirPids()) {
    const f = read(d);
    if (f && Number(f[1]) === masterPid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICKS_PER_SECOND;
}

function readdirPids() {
  return spawnSync("ls", ["/proc"], { encoding: "utf8" }).stdout.split("\n").filter((d) => /^\d+$/.test(d)).map(Number);
}

async function startInstance(sinkPort) {
  const dir = mkdtempSync(join(tmpdir(), "edge-relay-bench-postfix-"));
  // The postfix user must reach the queue below it (mkdtemp makes the directory 0700).
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, "etc");
  spawnSync("mkdir", ["-p", conf, join(dir, "queue"), join(dir, "data")]);
  spawnSync("chown", ["postfix", join(dir, "data")]);
  writeFileSync(join(conf, "master.cf"), readFileSync("/usr/share/postfix/master.cf.dist", "utf8"));
  writeFileSync(
    join(conf, "main.cf"),
    [
      "compatibility_level = 3.6",
      `queue_directory = ${join(dir, "queue")}`,
      `data_directory = ${join(dir, "data")}`,
      "meta_directory = /etc/postfix",
      "shlib_directory = /usr/lib/postfix",
      "command_directory = /usr/sbin",
      "daemon_directory = /usr/lib/postfix/sbin",
      "mail_owner = postfix",
      "setgid_group = postdrop",
      "myhostname = postfix-bench.edge-relay.local",
      "mydestination =",
      "inet_interfaces = loopback-only",
      "inet_protocols = ipv4",
      "mynetworks = 127.0.0.0/8",
      `relayhost = [127.0.0.1]:${sinkPort}`,
      "smtpd_recipient_restrictions = permit_mynetworks, reject",
      "smtp_tls_security_level = none",
      "smtpd_tls_security_level = none",
      "alias_maps =",
      "alias_database =",
      "local_recipient_maps =",
      "syslog_name = postfix-bench",
      `maillog_file_prefixes = ${dir}`,
      `maillog_file = ${join(dir, "postfix.log")}`,
      "",
    ].join("\n"),
  );
  // Every service outside a chroot (nothing is copied into one), no port-25 listener, one smtpd on our port.
  run(POSTCONF, ["-c", conf, "-F", "*/*/chroot = n"]);
  run(POSTCONF, ["-c", conf, "-M#", "smtp/inet"]);
  run(POSTCONF, ["-c", conf, "-M", "-e", `127.0.0.1:${port}/inet = 127.0.0.1:${port} inet n - n - - smtpd`]);
  run(POSTCONF, ["-c", conf, "-M", "-e", "postlog/unix-dgram = postlog unix-dgram n - n - 1 postlogd"]);
  try {
    run(POSTFIX, ["-c", conf, "start"]);
  } catch (e) {
    const log = existsSync(join(dir, "postfix.log")) ? readFileSync(join(dir, "postfix.log"), "utf8").split("\n").slice(-8).join("\n") : "";
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${e.message}\n${log}`);
  }
  const pidFile = join(dir, "queue", "pid", "master.pid");
  for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100));
  const masterPid = Number(readFileSync(pidFile, "utf8").trim());
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(true));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(false)));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    dir,
    port,
    masterPid,
    version: run(POSTCONF, ["-c", conf, "-h", "mail_version"]).trim(),
    stop: () => {
      spawnSync(POSTFIX, ["-c", conf, "stop"]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function smtpSource(port, count, concurrency, bodyBytes) {
  return new Promise((resolve, reject) => {
    // -d: keep each session open for the next message (as the HTTP clients keep their connections);
    // -N: distinct recipients, so nothing is deduplicated or cached.
    const args = ["-d", "-N", "-s", String(concurrency), "-m", String(count), "-l", String(bodyBytes), "-f", "bench@bench.example", "-t", "pf@sink.example", "-M", "bench.example", `127.0.0.1:${port}`];
    const child = spawn(SMTP_SOURCE, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code}: ${err}`))));
  });
}

/**
 * Starts the private Postfix instance and warms it up; returns null (with the reason printed) when this machine
 * cannot run it. `targetBytes`: the mean message size the relay delivered, so both sides deliver the same size.
 */
export async function startPostfix({ sink, concurrency, targetBytes, drainTimeoutMs }) {
  const why = postfixUnavailable();
  if (why) {
    console.log(`[postfix] skipped: ${why}`);
    return { skipped: why };
  }
  let pf;
  try {
    pf = await startInstance(sink.port);
    // smtp-source's -l is the body; smtp-source and Postfix add ~340 bytes of headers (Received, Message-Id, Date,
    // From, To), measured at the sink. mean_bytes_at_sink in the results shows how close both sides came.
    pf.bodyBytes = Math.max(100, targetBytes - 340);
    // Warm-up (not reported): process pool, queue directories, connection cache.
    await sink.reset();
    await smtpSource(pf.port, 200, concurrency, pf.bodyBytes);
    await waitForSink(sink, 200, drainTimeoutMs);
    return pf;
  } catch (e) {
    pf?.stop();
    console.log(`[postfix] failed: ${e.message}`);
    return { skipped: `failed: ${e.message}` };
  }
}

/** One measured round: `count` messages from `concurrency` smtp-source sessions until all are at the sink. */
export async function postfixRound(pf, { sink, count, concurrency, drainTimeoutMs }) {
  await sink.reset();
  process.stdout.write(`[postfix ${pf.version}] ${count} messages via smtp-source, ${concurrency} sessions ... `);
  const cpu0 = instanceCpuSeconds(pf.masterPid);
  const t0 = Date.now();
  await smtpSource(pf.port, count, concurrency, pf.bodyBytes);
  const t1 = Date.now();
  const drained = await waitForSink(sink, count, drainTimeoutMs);
  const cpu1 = instanceCpuSeconds(pf.masterPid);
  const report = await sink.report();
  const last = report.deliveries.reduce((m, d) => Math.max(m, d[1]), t0);
  const bytes = report.deliveries.reduce((s, d) => s + d[2], 0);
  const delivered = report.deliveries.length;
  const out = {
    name: "postfix",
    sent: count,
    concurrency,
    delivered,
    drained: drained.complete,
    mean_bytes_at_sink: delivered ? Math.round(bytes / delivered) : null,
    accept_seconds: round((t1 - t0) / 1000, 2),
    end_to_end_seconds: round((last - t0) / 1000, 2),
    accepted_per_second: round(count / ((t1 - t0) / 1000)),
    delivered_per_second: round(delivered / ((last - t0) / 1000)),
    cpu_seconds: round(cpu1 - cpu0, 2),
    cpu_seconds_per_1000: round(((cpu1 - cpu0) / Math.max(1, delivered)) * 1000, 3),
  };
  console.log(`${out.accepted_per_second} accepted/s, ${out.delivered_per_second} delivered/s`);
  return out;
}

export const POSTFIX_SETUP = "private instance (own config, queue and data dirs, own smtpd port), relayhost = the bench sink, Debian defaults otherwise (services not chrooted), fed by smtp-source -d -N";
