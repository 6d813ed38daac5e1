/**
 * Real network peers for tests, all on 127.0.0.1:
 * - SMTP servers (the `smtp-server` package) that record what they receive and can be scripted to
 *   misbehave: reply with a given code at a stage, drop the connection mid-DATA, stall, require AUTH, ...
 * - a DNS-over-HTTPS stub (JSON API, RFC 8484-style `application/dns-json`) serving records tests register;
 * - an HTTP control server through which tests (including those inside workerd) start scripted SMTP
 *   servers, read back received messages and register DNS records.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import { handleHookRequest } from "./hook-receiver";
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from "smtp-server";

/** One reply rule for a scripted SMTP server. */
export interface SmtpRule {
  /** Where the rule applies. */
  stage: "connect" | "mail" | "rcpt" | "data";
  /** Only for rcpt (recipient address) or mail (sender): apply when the address contains this text. */
  match?: string;
  /** SMTP reply code to answer with (e.g. 450, 550). Omit with `drop` or `stallMs`. */
  code?: number;
  /** Reply text, may start with an enhanced status code ("5.1.1 no such user"). */
  message?: string;
  /** Close the TCP connection instead of replying (at data: after part of the body was read). */
  drop?: boolean;
  /** Wait this long before going on (to trigger client timeouts). */
  stallMs?: number;
  /** Apply only to the first N matching commands, then behave normally. */
  times?: number;
  /** Apply with this probability (0..1) instead of always; uses a seeded generator. */
  probability?: number;
}

export interface SmtpServerScript {
  rules?: SmtpRule[];
  /** Require AUTH with these credentials. */
  auth?: { user: string; pass: string; required: boolean };
  /** Advertise STARTTLS with a self-signed certificate (PEM) when given. */
  tls?: { key: string; cert: string };
  /** Implicit TLS (SMTPS) with the tls certificate. */
  secure?: boolean;
  /** Advertised SIZE limit in bytes. */
  size?: number;
  /** Banner/EHLO host name. */
  name?: string;
  /** Hide extensions from EHLO, e.g. ["PIPELINING", "8BITMIME"]. */
  hide?: string[];
  /** Random seed for rules with a probability. */
  seed?: number;
}

/** A message as received by a test SMTP server. */
export interface ReceivedMessage {
  mailFrom: string;
  rcptTo: string[];
  /** Raw bytes as latin1 string (so 8-bit data round-trips); decode with Buffer.from(raw, "latin1"). */
  raw: string;
  receivedAt: number;
  /** Extra MAIL FROM parameters (SIZE, BODY, SMTPUTF8, RET, ENVID ...). */
  mailParams: Record<string, unknown>;
  heloName: string;
  secure: boolean;
  authUser?: string;
  sessionId: string;
}

export interface ScriptedServer {
  port: number;
  messages: ReceivedMessage[];
  /** Timestamps (ms) of every MAIL FROM, for rate checks. */
  mailTimes: number[];
  /** Connection open/close timestamps, for concurrency checks. */
  connections: { openedAt: number; closedAt?: number }[];
  server: SMTPServer;
  close(): Promise<void>;
}

function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

function smtpError(code: number, message: string): Error {
  const err = new Error(message) as Error & { responseCode: number };
  err.responseCode = code;
  return err;
}

/** Starts an SMTP server on 127.0.0.1 with the given script; port 0 picks a free port. */
export async function startSmtpServer(script: SmtpServerScript = {}, port = 0): Promise<ScriptedServer> {
  const rules = (script.rules ?? []).map((r) => ({ ...r, used: 0 }));
  const random = seeded(script.seed ?? 42);
  const messages: ReceivedMessage[] = [];
  const mailTimes: number[] = [];
  const connections: { openedAt: number; closedAt?: number }[] = [];
  const connBySession = new Map<string, { openedAt: number; closedAt?: number }>();

  const pick = (stage: SmtpRule["stage"], subject?: string) => {
    for (const r of rules) {
      if (r.stage !== stage) continue;
      if (r.match && !(subject ?? "").toLowerCase().includes(r.match.toLowerCase())) continue;
      if (r.times !== undefined && r.used >= r.times) continue;
      if (r.probability !== undefined && random() >= r.probability) continue;
      r.used++;
      return r;
    }
    return undefined;
  };
  const apply = async (rule: SmtpRule | undefined, session: SMTPServerSession, socketOf: () => unknown) => {
    if (!rule) return;
    if (rule.stallMs) await new Promise((r) => setTimeout(r, rule.stallMs));
    if (rule.drop) {
      (socketOf() as { destroy?: () => void } | undefined)?.destroy?.();
      throw smtpError(421, "connection dropped by test script");
    }
    if (rule.code) throw smtpError(rule.code, rule.message ?? `${rule.code} scripted reply`);
    void session;
  };

  // smtp-server keeps its live connections in `server.connections`; a connection's id is its session id.
  const sockets = {
    get(id: string): { destroy(): void } | undefined {
      const conns = (server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections;
      for (const c of conns) if (c.id === id) return c._socket;
      return undefined;
    },
  };
  const options: SMTPServerOptions = {
    name: script.name ?? "mx.test.example",
    logger: false,
    secure: script.secure ?? false,
    key: script.tls?.key,
    cert: script.tls?.cert,
    disabledCommands: [
      ...(script.tls ? [] : ["STARTTLS"]),
      ...(script.auth ? [] : ["AUTH"]),
    ],
    authOptional: !(script.auth?.required ?? false),
    allowInsecureAuth: true,
    size: script.size,
    hideSize: script.size === undefined,
    hidePIPELINING: script.hide?.includes("PIPELINING") ?? false,
    hide8BITMIME: script.hide?.includes("8BITMIME") ?? false,
    hideSMTPUTF8: script.hide?.includes("SMTPUTF8") ?? false,
    hideENHANCEDSTATUSCODES: script.hide?.includes("ENHANCEDSTATUSCODES") ?? false,
    hideDSN: script.hide?.includes("DSN") ?? false,
    onConnect(session, callback) {
      const c = { openedAt: Date.now() };
      connections.push(c);
      connBySession.set(session.id, c);
      const rule = pick("connect");
      apply(rule, session, () => sockets.get(session.id)).then(() => callback(), (e: Error) => callback(e));
    },
    onClose(session) {
      const c = connBySession.get(session.id);
      if (c) c.closedAt = Date.now();
    },
    onAuth(auth, _session, callback) {
      if (script.auth && auth.username === script.auth.user && auth.password === script.auth.pass) {
        callback(null, { user: auth.username });
      } else {
        callback(smtpError(535, "5.7.8 authentication failed"));
      }
    },
    onMailFrom(address, session, callback) {
      mailTimes.push(Date.now());
      apply(pick("mail", address.address), session, () => sockets.get(session.id)).then(
        () => callback(),
        (e: Error) => callback(e),
      );
    },
    onRcptTo(address, session, callback) {
      apply(pick("rcpt", address.address), session, () => sockets.get(session.id)).then(
        () => callback(),
        (e: Error) => callback(e),
      );
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      const rule = pick("data");
      let dropped = false;
      stream.on("data", (c: Buffer) => {
        chunks.push(c);
        if (rule?.drop && !dropped) {
          dropped = true;
          sockets.get(session.id)?.destroy();
        }
      });
      stream.on("end", () => {
        if (dropped) return;
        const raw = Buffer.concat(chunks).toString("latin1");
        if (stream.sizeExceeded) return callback(smtpError(552, "5.3.4 message exceeds fixed maximum message size"));
        apply(rule, session, () => sockets.get(session.id)).then(
          () => {
            messages.push({
              mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
              rcptTo: session.envelope.rcptTo.map((r) => r.address),
              raw,
              receivedAt: Date.now(),
              mailParams: (session.envelope.mailFrom ? session.envelope.mailFrom.args : {}) as Record<string, unknown>,
              heloName: session.hostNameAppearsAs,
              secure: session.secure,
              authUser: session.user as string | undefined,
              sessionId: session.id,
            });
            callback(null, `2.0.0 Ok: queued as ${session.id}-${messages.length}`);
          },
          (e: Error) => callback(e),
        );
      });
    },
  };
  const server = new SMTPServer(options);
  server.on("error", () => {
    /* client resets are expected in chaos tests */
  });
  await new Promise<void>((resolve, reject) => {
    server.listen(port, "127.0.0.1", () => resolve());
    server.server.once("error", reject);
  });
  const actualPort = (server.server.address() as AddressInfo).port;
  return {
    port: actualPort,
    messages,
    mailTimes,
    connections,
    server,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** DNS records served by the DoH stub, keyed by `${name}|${type}`. */
export type DnsAnswer = { name: string; type: number; TTL: number; data: string };
export interface DnsEntry {
  Status: number; // 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN
  Answer?: DnsAnswer[];
}

const DNS_TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, MX: 15, TXT: 16, AAAA: 28 };

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export interface Peers {
  controlPort: number;
  sink: ScriptedServer;
  servers: Map<number, ScriptedServer>;
  dns: Map<string, DnsEntry>;
  close(): Promise<void>;
}

/**
 * Starts the default sink and the control server. Control API (JSON):
 * - POST /smtp              body: SmtpServerScript          -> { port }
 * - GET  /smtp/:port/messages                                -> ReceivedMessage[]
 * - GET  /smtp/:port/stats                                   -> { mailTimes, connections }
 * - DELETE /smtp/:port                                       -> stops it
 * - POST /dns               body: { name, type, entry: DnsEntry }
 * - GET  /dns-query?name=&type=                              -> DoH JSON answer
 * - POST|GET /hooks/:name, POST /hooks/:name/config -> a webhook receiver (see hook-receiver.ts)
 * - POST /verify-dkim       body: { raw }  -> [{ domain, selector, result, info }] from mailauth's verifier,
 *                           resolving DKIM keys from the TXT records registered with POST /dns
 * - POST /mta-sts/:domain    body: { text, status?, contentType? } -> serves an MTA-STS policy (RFC 8461) at
 *   GET /mta-sts/:domain/.well-known/mta-sts.txt (plain HTTP: workerd's fetch trusts no test CA; see MTA_STS_POLICY_URL)
 * - GET  /fixtures/bounces/:file   -> bytes of a file of the bounce corpus in test/fixtures/bounces (code inside workerd cannot read files)
 * - GET  /fixtures/inbound/:path   -> bytes of a file under test/fixtures/inbound/ (one sub-folder level)
 */
export async function startPeers(): Promise<Peers> {
  const sink = await startSmtpServer({ name: "sink.test.example" });
  const servers = new Map<number, ScriptedServer>([[sink.port, sink]]);
  const dns = new Map<string, DnsEntry>();
  const stsPolicies = new Map<string, { text: string; status?: number; contentType?: string; fetches: number }>();

  const http: HttpServer = createHttpServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const send = (status: number, body: unknown, type = "application/json") => {
      res.writeHead(status, { "content-type": type });
      res.end(JSON.stringify(body));
    };
    try {
      const parts = url.pathname.split("/").filter(Boolean);
      if (req.method === "POST" && url.pathname === "/smtp") {
        const script = JSON.parse((await readBody(req)) || "{}") as SmtpServerScript;
        const s = await startSmtpServer(script);
        servers.set(s.port, s);
        return send(200, { port: s.port });
      }
      if (parts[0] === "smtp" && parts[1]) {
        const s = servers.get(Number(parts[1]));
        if (!s) return send(404, { error: "no such server" });
        if (req.method === "GET" && parts[2] === "messages") return send(200, s.messages);
        if (req.method === "GET" && parts[2] === "stats") return send(200, { mailTimes: s.mailTimes, connections: s.connections });
        if (req.method === "DELETE") {
          servers.delete(s.port);
          await s.close();
          return send(200, { ok: true });
        }
      }
      if (req.method === "POST" && url.pathname === "/dns") {
        const { name, type, entry } = JSON.parse(await readBody(req)) as { name: string; type: string; entry: DnsEntry };
        dns.set(`${name.toLowerCase().replace(/\.$/, "")}|${type.toUpperCase()}`, entry);
        return send(200, { ok: true });
      }
      if (parts[0] === "mta-sts" && parts[1]) {
        const domain = parts[1].toLowerCase();
        if (req.method === "POST" && parts.length === 2) {
          stsPolicies.set(domain, { ...(JSON.parse(await readBody(req)) as { text: string; status?: number; contentType?: string }), fetches: 0 });
          return send(200, { ok: true });
        }
        if (req.method === "GET" && parts.length === 2) return send(200, { fetches: stsPolicies.get(domain)?.fetches ?? 0 });
        const p = stsPolicies.get(domain);
        if (req.method === "GET" && parts.slice(2).join("/") === ".well-known/mta-sts.txt" && p) {
          p.fetches++;
          res.writeHead(p.status ?? 200, { "content-type": p.contentType ?? "text/plain" });
          return res.end(p.text);
        }
        return send(404, { error: "no policy" });
      }
      if (req.method === "POST" && url.pathname === "/verify-dkim") {
        const { raw } = JSON.parse(await readBody(req)) as { raw: string }; // latin1, as ReceivedMessage.raw
        const resolver = async (name: string, type: string): Promise<string[][]> => {
          const entry = dns.get(`${name.toLowerCase().replace(/\.$/, "")}|${type.toUpperCase()}`);
          if (!entry?.Answer?.length) throw Object.assign(new Error(`stub DNS: no ${type} for ${name}`), { code: "ENOTFOUND" });
          // DoH TXT data is quoted; mailauth wants the strings of each record.
          return entry.Answer.map((a) => [a.data.replace(/^"|"$/g, "").replace(/" "/g, "")]);
        };
        const result = await dkimVerify(Buffer.from(raw, "latin1"), { resolver });
        return send(
          200,
          result.results.map((r) => ({ domain: r.signingDomain, selector: r.selector, result: r.status.result, info: r.info })),
        );
      }
      if (req.method === "GET" && parts[0] === "fixtures") {
        const file = fixturePath(parts.slice(1));
        if (!file) return send(404, { error: "no such fixture" });
        res.writeHead(200, { "content-type": "application/octet-stream" });
        return res.end(await readFile(file));
      }
      if (await handleHookRequest(req, res, parts, () => readBody(req))) return;
      if (url.pathname === "/dns-query") {
        const name = (url.searchParams.get("name") ?? "").toLowerCase().replace(/\.$/, "");
        const typeParam = (url.searchParams.get("type") ?? "A").toUpperCase();
        const type = /^\d+$/.test(typeParam) ? Number(typeParam) : (DNS_TYPES[typeParam] ?? 1);
        const typeName = Object.entries(DNS_TYPES).find(([, v]) => v === type)?.[0] ?? String(type);
        const entry = dns.get(`${name}|${typeName}`);
        const body = {
          Status: entry?.Status ?? 3,
          TC: false,
          RD: true,
          RA: true,
          AD: false,
          CD: false,
          Question: [{ name: `${name}.`, type }],
          ...(entry?.Answer ? { Answer: entry.Answer } : {}),
        };
        // Unregistered names that have other record types registered are NOERROR with no answer.
        if (!entry && [...dns.keys()].some((k) => k.startsWith(`${name}|`))) body.Status = 0;
        return send(200, body, "application/dns-json");
      }
      send(404, { error: "not found" });
    } catch (e) {
      send(500, { error: String(e) });
    }
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", () => r()));
  const controlPort = (http.address() as AddressInfo).port;
  return {
    controlPort,
    sink,
    servers,
    dns,
    close: async () => {
      await Promise.all([...servers.values()].map((s) => s.close()));
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const FIXTURE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The file a /fixtures/... request names: the bounce corpus (test/fixtures/bounces) or test/fixtures/inbound. */
function fixturePath(parts: string[]): string | undefined {
  if (!parts.slice(1).every((p) => FIXTURE_NAME.test(p))) return undefined;
  let file: string | undefined;
  if (parts[0] === "bounces" && parts.length === 2) {
    file = path.join(repoRoot, "test/fixtures/bounces", parts[1]!);
  } else if (parts[0] === "inbound" && (parts.length === 2 || parts.length === 3)) {
    file = path.join(repoRoot, "test/fixtures/inbound", ...parts.slice(1));
  }
  return file && existsSync(file) ? file : undefined;
}
