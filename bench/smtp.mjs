#!/usr/bin/env node
/**
 * `npm run bench:smtp`: messages per second through one connection and through six, to a local SMTP sink,
 * for the Edge Relay SMTP client running in the Workers runtime (workerd via wrangler's unstable_startWorker,
 * over cloudflare:sockets) and for nodemailer's SMTP transport (pooled) in Node, with the same messages against
 * the same sink. The sink (smtp-server) runs in its own process so neither client shares a CPU with it.
 * Prints medians over repeated runs and the ratio. Options: --runs N --messages N --node (run this client in
 * Node through the node:net adapter instead of workerd).
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

function makeMessage() {
  const lines = [
    "From: Bench Sender <bench@sender.example>",
    "To: Someone <rcpt@dest.example>",
    "Subject: Edge Relay benchmark message",
    "Date: Sat, 28 Nov 2026 06:00:00 +0000",
    "Message-ID: <bench@sender.example>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
  ];
  for (let i = 0; i < 60; i++) lines.push(`${i % 10 === 0 ? "." : ""}Line ${i} of the benchmark body, with a little UTF-8: Grüße. ${"x".repeat(i % 20)}`);
  return `${lines.join("\r\n")}\r\n`;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function startSink() {
  const child = fork(fileURLToPath(import.meta.url), ["--sink"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const { port } = await new Promise((resolve) => child.once("message", resolve));
  return {
    port,
    count: () =>
      new Promise((resolve) => {
        child.once("message", (m) => resolve(m.count));
        child.send("count");
      }),
    stop: () => new Promise((resolve) => (child.once("exit", resolve), child.send("stop"))),
  };
}

async function nodemailerRun(nodemailer, port, raw, messages, connections) {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
    name: "bench.edge-relay.example",
  });
  const t0 = performance.now();
  const results = await Promise.allSettled(
    Array.from({ length: messages }, (_, i) =>
      transport.sendMail({ envelope: { from: "bench@sender.example", to: [`rcpt${i}@dest.example`] }, raw }),
    ),
  );
  const ms = performance.now() - t0;
  transport.close();
  return { ms, sent: results.filter((r) => r.status === "fulfilled").length };
}

async function loadNodeClient() {
  const { build } = await import("esbuild");
  const out = await build({
    stdin: { contents: 'export * from "./src/smtp/client"; export * from "./src/smtp/node-socket";', resolveDir: root, loader: "ts" },
    bundle: true,
    format: "esm",
    platform: "node",
    write: false,
    logLevel: "warning",
  });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
}

async function nodeClientRun(mod, port, raw, messages, connections) {
  const body = new TextEncoder().encode(raw);
  const factory = mod.createNodeSocketFactory();
  let next = 0;
  let sent = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const session = await mod.openSmtpSession({ socketFactory: factory, host: "127.0.0.1", port, tls: "off", heloName: "bench.edge-relay.example" });
      try {
        while (next < messages) {
          const i = next++;
          const r = await session.sendMail({ mailFrom: "bench@sender.example", rcptTo: [`rcpt${i}@dest.example`] }, body);
          if (!r.error) sent++;
        }
      } finally {
        await session.quit();
      }
    }),
  );
  return { ms: performance.now() - t0, sent };
}

async function main() {
  const runs = arg("--runs", 5);
  const messages = arg("--messages", 2000);
  const inNode = process.argv.includes("--node");
  const raw = makeMessage();
  const nodemailer = (await import("nodemailer")).default;
  const sink = await startSink();

  let worker;
  let ours;
  let where;
  if (inNode) {
    const mod = await loadNodeClient();
    ours = (connections) => nodeClientRun(mod, sink.port, raw, messages, connections);
    where = `Node ${process.version} (node:net adapter) -- NOT the Workers runtime`;
  } else {
    const { unstable_startWorker } = await import("wrangler");
    worker = await unstable_startWorker({
      config: join(here, "smtp-worker.wrangler.jsonc"),
      dev: { server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false, logLevel: "none" },
    });
    await worker.ready;
    ours = async (connections) => {
      const t0 = performance.now();
      const res = await worker.fetch("http://bench/run", {
        method: "POST",
        body: JSON.stringify({ port: sink.port, messages, connections, raw }),
      });
      if (!res.ok) throw new Error(`bench worker: ${res.status} ${await res.text()}`);
      const r = await res.json();
      // Wall clock seen from Node, including the one HTTP round trip to the worker.
      return { ms: performance.now() - t0, sent: r.sent };
    };
    where = "workerd (wrangler unstable_startWorker), cloudflare:sockets";
  }

  console.log(`SMTP throughput to a local smtp-server sink (separate process), ${messages} messages of ${Buffer.byteLength(raw)} bytes per run, median of ${runs} runs`);
  console.log(`  Edge Relay client: ${where}`);
  const { createRequire } = await import("node:module");
  const nodemailerVersion = createRequire(import.meta.url)("nodemailer/package.json").version;
  console.log(`  nodemailer ${nodemailerVersion}: SMTP transport, pool, Node ${process.version}`);
  console.log("");
  const rows = [];
  try {
    for (const connections of [1, 6]) {
      // One warm-up round each, not counted.
      await ours(connections);
      await nodemailerRun(nodemailer, sink.port, raw, Math.min(messages, 200), connections);
      const a = [];
      const b = [];
      for (let i = 0; i < runs; i++) {
        const r1 = await ours(connections);
        const r2 = await nodemailerRun(nodemailer, sink.port, raw, messages, connections);
        if (r1.sent !== messages || r2.sent !== messages) throw new Error(`incomplete run: ours ${r1.sent}, nodemailer ${r2.sent} of ${messages}`);
        a.push((r1.sent / r1.ms) * 1000);
        b.push((r2.sent / r2.ms) * 1000);
      }
      rows.push({ connections, ours: median(a), theirs: median(b) });
    }
  } finally {
    await worker?.dispose();
    await sink.stop();
  }
  const pad = (s, n) => String(s).padStart(n);
  console.log(`${pad("connections", 11)} ${pad("edge-relay msg/s", 17)} ${pad("nodemailer msg/s", 17)} ${pad("ratio", 7)}`);
  for (const r of rows) console.log(`${pad(r.connections, 11)} ${pad(r.ours.toFixed(0), 17)} ${pad(r.theirs.toFixed(0), 17)} ${pad((r.ours / r.theirs).toFixed(2), 7)}x`);
}

if (process.argv[2] === "--sink") {
  const { SMTPServer } = await import("smtp-server");
  let count = 0;
  const srv = new SMTPServer({
    logger: false,
    authOptional: true,
    disableReverseLookup: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    onData(stream, _session, cb) {
      stream.on("data", () => undefined);
      stream.on("end", () => {
        count++;
        cb(null, "2.0.0 Ok: queued");
      });
    },
  });
  srv.listen(0, "127.0.0.1", () => process.send({ port: srv.server.address().port }));
  process.on("message", (m) => {
    if (m === "count") process.send({ count });
    if (m === "stop") srv.close(() => process.exit(0));
  });
} else {
  await main();
}

