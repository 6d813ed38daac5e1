/**
 * SMTP sinks for the benchmarks, each in a child process of its own so they do not share an event loop with
 * the load generator. A sink records every accepted (recipient, time, size) and can misbehave on purpose:
 * answer 4xx at random, drop the connection in the middle of DATA, stall, refuse some recipients permanently,
 * and enforce a rate limit by its own clock (answering 421 4.7.0 to anything faster).
 *
 * Run as `node sink.mjs` under fork(); the parent talks to it over IPC (see startSink).
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * @typedef {object} SinkBehaviour
 * @property {number} [tempFailRate] probability of a 451 4.3.0 reply to DATA
 * @property {number} [dropRate] probability of closing the connection in the middle of DATA
 * @property {number} [stallRate] probability of waiting `stallMs` before answering MAIL FROM
 * @property {number} [stallMs]
 * @property {string} [refuseMatch] recipients containing this text get 550 5.1.1
 * @property {number} [ratePerSecond] the sink's own limit on MAIL FROM per second (sliding 1 s window)
 * @property {number} [seed]
 */

/** Starts one sink process; resolves when it listens. */
export async function startSink(behaviour = {}) {
  const child = fork(fileURLToPath(import.meta.url), ["--sink"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const pending = [];
  child.on("message", (m) => pending.shift()?.(m));
  const ask = (msg) =>
    new Promise((resolve) => {
      pending.push(resolve);
      child.send(msg);
    });
  const { port } = await ask({ op: "start", behaviour });
  return {
    port,
    pid: child.pid,
    /** Number of messages accepted (one per DATA 250). */
    count: async () => (await ask({ op: "count" })).count,
    /** Every accepted delivery: [recipient, epoch ms, bytes] per recipient, and the MAIL FROM / refusal stats. */
    report: () => ask({ op: "report" }),
    reset: () => ask({ op: "reset" }),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.send({ op: "stop" });
      }),
  };
}

function seeded(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

/** smtp-server keeps its live connections in `server.connections`; a connection's id is its session id. */
function socketOf(srv, id) {
  for (const c of srv.connections ?? []) if (c.id === id) return c._socket;
  return undefined;
}

async function runSink() {
  const { SMTPServer } = await import("smtp-server");
  let b = {};
  let random = Math.random;
  let accepted = 0;
  let deliveries = [];
  let mailTimes = [];
  let rateRefusals = 0;
  let tempFails = 0;
  let drops = 0;
  let stalls = 0;
  let permanentRefusals = 0;
  const fail = (code, text) => Object.assign(new Error(text), { responseCode: code });
  const recentMail = [];

  const srv = new SMTPServer({
    logger: false,
    authOptional: true,
    disableReverseLookup: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    size: 50 * 1024 * 1024,
    socketTimeout: 120_000,
    onMailFrom(_address, _session, cb) {
      const now = Date.now();
      // Every attempt counts toward the window, refused or not: the receiver's view of the sender's pace.
      mailTimes.push(now);
      if (b.ratePerSecond) {
        while (recentMail.length && recentMail[0] <= now - 1000) recentMail.shift();
        if (recentMail.length >= b.ratePerSecond) {
          rateRefusals++;
          return cb(fail(421, "4.7.0 rate limit exceeded, slow down"));
        }
        recentMail.push(now);
      }
      if (b.stallRate && random() < b.stallRate) {
        stalls++;
        setTimeout(() => cb(), b.stallMs ?? 2000);
        return;
      }
      cb();
    },
    onRcptTo(address, _session, cb) {
      if (b.refuseMatch && address.address.includes(b.refuseMatch)) {
        permanentRefusals++;
        return cb(fail(550, "5.1.1 no such user here"));
      }
      cb();
    },
    onData(stream, session, cb) {
      const drop = b.dropRate && random() < b.dropRate;
      const tempFail = !drop && b.tempFailRate && random() < b.tempFailRate;
      let bytes = 0;
      let done = false;
      stream.on("data", (chunk) => {
        bytes += chunk.length;
        if (drop && !done && bytes > 256) {
          // Mid-DATA: part of the body has arrived, the rest never will be acknowledged.
          done = true;
          drops++;
          socketOf(srv, session.id)?.destroy();
          stream.resume();
        }
      });
      stream.on("end", () => {
        if (done) return;
        if (tempFail) {
          tempFails++;
          return cb(fail(451, "4.3.0 temporary local problem, try again"));
        }
        const now = Date.now();
        accepted++;
        for (const r of session.envelope.rcptTo) deliveries.push([r.address, now, bytes]);
        cb(null, "2.0.0 Ok: queued");
      });
    },
  });
  srv.on("error", () => undefined);

  process.on("message", (m) => {
    if (m.op === "start") {
      b = m.behaviour ?? {};
      random = seeded(b.seed ?? 7);
      srv.listen(0, "127.0.0.1", () => process.send({ port: srv.server.address().port }));
    } else if (m.op === "count") {
      process.send({ count: accepted });
    } else if (m.op === "report") {
      process.send({ accepted, deliveries, mailTimes, rateRefusals, tempFails, drops, stalls, permanentRefusals });
    } else if (m.op === "reset") {
      accepted = 0;
      deliveries = [];
      mailTimes = [];
      rateRefusals = tempFails = drops = stalls = permanentRefusals = 0;
      process.send({ ok: true });
    } else if (m.op === "stop") {
      srv.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
    }
  });
}

if (process.argv[2] === "--sink") await runSink();
