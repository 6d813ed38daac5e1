// @ts-check
/**
 * The SMTP bridge: an `smtp-server` that authenticates clients with Edge Relay API keys, streams every
 * transaction to the relay's raw endpoint and answers with the relay's verdict (see smtp-verdict.js). It
 * accepts a message with 250 only after the relay answered 202, so a message is always either queued at the
 * relay or still the client's responsibility.
 */
import { createHash } from "node:crypto";
import { PassThrough } from "node:stream";
import { SMTPServer } from "smtp-server";
import { asciiEnvelopeAddress, checkApiKey, postRawMessage } from "./relay-client.js";
import { replyText, verdictFor } from "./smtp-verdict.js";

/**
 * Envelope address syntax, checked by the bridge itself at MAIL and RCPT (smtp-server's own check runs in its
 * lenient mode, which would otherwise answer a bare 501), so every bad address gets one reply: 553 5.1.3 at RCPT,
 * 553 5.1.7 at MAIL. Mirrors the relay's address check, and also keeps "," and quotes out of the
 * comma-separated X-Envelope-To header. Non-ASCII is allowed only in SMTPUTF8 transactions (nonAsciiProblem).
 */
const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+(\.[^\s@<>()",;:\\[\].]+)+$/;

/**
 * Whether `address` is a mailbox the relay can take: ADDRESS, a dot-atom local part (no leading, trailing or
 * doubled dot), DNS labels of 1-63 octets of letters, digits and hyphens (or non-ASCII) without a leading or
 * trailing hyphen, and the RFC 5321 §4.5.3.1
 * lengths (local part 64, domain 255, path 256 octets with the brackets).
 * @param {string} address
 */
export function validEnvelopeAddress(address) {
  if (!ADDRESS.test(address)) return false;
  const at = address.lastIndexOf("@");
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  const octets = (/** @type {string} */ s) => Buffer.byteLength(s, "utf8");
  if (octets(local) > 64 || octets(domain) > 255 || octets(address) > 254) return false;
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return false;
  // Letters, digits and hyphens (LDH, RFC 5890 §2.3.1), or non-ASCII for a U-label.
  return domain.split(".").every((label) => /^[a-z0-9\u0080-\u{10ffff}-]+$/iu.test(label) && octets(label) <= 63 && !label.startsWith("-") && !label.endsWith("-"));
}

/**
 * The address exactly as the client wrote it in a MAIL FROM or RCPT TO line, or null. smtp-server hands the
 * callbacks the address with A-labels turned into Unicode (`xn--bcher-kva` -> `bücher`), which would make an
 * ASCII address look like one that needs SMTPUTF8; the bridge reads the line itself to tell them apart.
 * A source route (RFC 5321 §4.1.2, "@relay:") is dropped, as smtp-server does.
 * @param {string | undefined} line
 */
export function addressAsWritten(line) {
  const m = /^\s*(?:MAIL\s+FROM|RCPT\s+TO)\s*:\s*<([^<>]*)>/i.exec(line ?? "");
  return m && m[1] !== undefined ? m[1].replace(/^@[^\s,:@]+(?:,@[^\s,:@]+)*:/, "") : null;
}

/**
 * DSN parameters (RFC 3461). The bridge does not offer DSN: the relay sends its own RFC 3464 report to the
 * envelope sender on bounce and expiry, and has no per-recipient NOTIFY/RET to honour, so a client that sends
 * them anyway (RFC 3461 §4 forbids it without the EHLO keyword) gets 555 instead of silently different reports.
 */
const DSN_MAIL_PARAMS = ["RET", "ENVID"];
const DSN_RCPT_PARAMS = ["NOTIFY", "ORCPT"];

/**
 * The DSN parameters among a MAIL or RCPT command's, or null.
 * @param {Record<string, unknown> | false | undefined} args
 * @param {string[]} names
 */
function dsnParams(args, names) {
  if (!args) return null;
  const given = names.filter((n) => n in args);
  return given.length > 0 ? given : null;
}

/** @typedef {import("./options.js").BridgeOptions} BridgeOptions */
/** @typedef {import("./relay-client.js").RelayFetch} RelayFetch */
/** @typedef {import("smtp-server").SMTPServerSession} SMTPServerSession */
/** @typedef {{ send(code: number, data?: string): void, close(): void }} LiveConnection */

/**
 * @typedef {object} BridgeDeps
 * @property {RelayFetch} [fetch]
 * @property {(line: string) => void} [log]  one line per transaction and per lifecycle event
 * @property {() => number} [now]
 */

/**
 * @typedef {object} Bridge
 * @property {{ listen: { host: string, port: number } | null, listenTls: { host: string, port: number } | null }} addresses
 * @property {() => number} inFlight  transactions waiting for the relay
 * @property {() => Promise<void>} close  stop accepting, finish transactions in flight, then close connections
 */

/**
 * An SMTP error for smtp-server's callbacks; the text carries the enhanced status code because the
 * library's own enhanced-code mapping is switched off (it would prefix a generic code to ours).
 * @param {number} code
 * @param {string} enhanced
 * @param {string} text
 */
function smtpError(code, enhanced, text) {
  return Object.assign(new Error(`${enhanced} ${text}`), { responseCode: code });
}

/** @param {string} key */
function keyFingerprint(key) {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

/**
 * RFC 5322 date-time in UTC, e.g. "Sat, 28 Nov 2026 06:01:02 +0000".
 * @param {Date} d
 */
function rfc5322Date(d) {
  const day = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][d.getUTCDay()];
  const month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][d.getUTCMonth()];
  const p = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${day}, ${p(d.getUTCDate())} ${month} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** @param {string} text */
function headerSafe(text) {
  return text.replace(/[^\x21-\x7e]/g, "?");
}

/**
 * The bridge's own trace header (RFC 5321 §4.4), with the protocol names of RFC 3848.
 * @param {SMTPServerSession} session
 * @param {string} hostname
 * @param {Date} at
 */
function receivedHeader(session, hostname, at) {
  const helo = headerSafe(session.hostNameAppearsAs || "unknown");
  const only = session.envelope.rcptTo.length === 1 ? session.envelope.rcptTo[0] : undefined;
  const forClause = only ? `\r\n\tfor <${headerSafe(only.address)}>` : "";
  return (
    `Received: from ${helo} (${headerSafe(session.clientHostname)} [${headerSafe(session.remoteAddress)}])\r\n` +
    `\tby ${headerSafe(hostname)} (Edge Relay SMTP bridge) with ${session.transmissionType || "SMTP"}\r\n` +
    `\tid ${headerSafe(session.id)}${forClause};\r\n\t${rfc5322Date(at)}\r\n`
  );
}

/**
 * Why a non-ASCII address cannot go through, or null. SMTPUTF8 is needed for any (RFC 6531 §3.4); beyond
 * that, only the domain can be sent to the relay (as an A-label), not a non-ASCII local part.
 * @param {string} address
 * @param {SMTPServerSession} session
 */
function nonAsciiProblem(address, session) {
  if (!/[^\x00-\x7f]/.test(address)) return null;
  if (!session.envelope.smtpUtf8) return `<${address}>: a non-ASCII address needs MAIL FROM with SMTPUTF8`;
  if (asciiEnvelopeAddress(address) === null) return `<${address}>: non-ASCII local parts cannot be relayed yet; internationalized domains can`;
  return null;
}

/** @param {string} value */
function logValue(value) {
  return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
}

/**
 * Refusals the relay reported, remembered for a while so the next transaction gets them at MAIL or RCPT,
 * where SMTP can refuse one recipient without refusing the others. Keyed by API key fingerprint.
 */
class RefusalMemory {
  /** @param {number} ttlMs @param {() => number} now */
  constructor(ttlMs, now) {
    this.ttlMs = ttlMs;
    this.now = now;
    /** @type {Map<string, number>} */
    this.entries = new Map();
  }

  /** @param {string} key */
  remember(key) {
    if (this.ttlMs <= 0) return;
    // Bounded: the oldest entries go first (Map keeps insertion order).
    if (this.entries.size >= 10_000) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.delete(key);
    this.entries.set(key, this.now() + this.ttlMs);
  }

  /** @param {string} key */
  has(key) {
    const until = this.entries.get(key);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }
}

/**
 * Starts the bridge's listeners.
 * @param {BridgeOptions} options
 * @param {BridgeDeps} [deps]
 * @returns {Promise<Bridge>}
 */
export async function startBridge(options, deps = {}) {
  const log = deps.log ?? ((line) => console.log(line));
  const now = deps.now ?? Date.now;
  const refusals = new RefusalMemory(options.refusalMemoryMs, now);
  /** @type {Map<string, number>} fingerprint -> valid until */
  const checkedKeys = new Map();
  /** @type {Map<string, { apiKey: string | null, via: "auth" | "trusted" | null }>} */
  const sessions = new Map();
  /** @type {Set<Promise<void>>} */
  const inFlight = new Set();
  let shuttingDown = false;
  /** @type {Map<string, string>} session id -> the MAIL or RCPT line being handled (see addressAsWritten) */
  const addressLines = new Map();
  /**
   * smtp-server's logger is the one place it shows the command line as the client sent it: it logs each
   * command (debug, `tnx: "command"`) before handling it, and handles one command of a connection at a time.
   * Everything else it logs is dropped, as with `logger: false`.
   */
  const quiet = () => undefined;
  const commandLogger = {
    trace: quiet,
    info: quiet,
    warn: quiet,
    error: quiet,
    fatal: quiet,
    /** @param {{ tnx?: string, cid?: string, command?: string }} entry @param {unknown} _message @param {unknown} line */
    debug(entry, _message, line) {
      if (entry?.tnx !== "command" || typeof entry.cid !== "string") return;
      if (entry.command === "MAIL" || entry.command === "RCPT") addressLines.set(entry.cid, String(line));
    },
  };

  /**
   * The address of a MAIL/RCPT command as written: ASCII as given (A-labels stay A-labels), else the Unicode
   * form smtp-server parsed.
   * @param {{ address: string }} parsed
   * @param {SMTPServerSession} session
   */
  const writtenAddress = (parsed, session) => {
    const raw = addressAsWritten(addressLines.get(session.id));
    return raw !== null && raw.toLowerCase() !== "postmaster" && /^[\x21-\x7e]*$/.test(raw) ? raw : parsed.address;
  };

  /**
   * Logs a command the bridge refused (one line, like a transaction) and returns the error for the callback.
   * @param {"connect" | "auth" | "mail" | "rcpt"} stage
   * @param {SMTPServerSession} session
   * @param {string} subject  the user name or address concerned
   * @param {Error & { responseCode: number }} error
   */
  const refuse = (stage, session, subject, error) => {
    log(`edge-relay-bridge refused stage=${stage} session=${session.id} client=${session.remoteAddress} subject=${logValue(`<${subject}>`)} reply=${logValue(`${error.responseCode} ${error.message}`)}`);
    return error;
  };

  /** @param {SMTPServerSession} session */
  const stateOf = (session) => {
    let s = sessions.get(session.id);
    if (!s) {
      s = { apiKey: null, via: null };
      sessions.set(session.id, s);
    }
    return s;
  };

  /**
   * @param {string} apiKey
   * @returns {Promise<import("./relay-client.js").KeyCheck>}
   */
  const verifyKey = async (apiKey) => {
    const fp = keyFingerprint(apiKey);
    const until = checkedKeys.get(fp);
    if (until !== undefined && until > now()) return "valid";
    const result = await checkApiKey(options.relayUrl, apiKey, { fetch: deps.fetch, timeoutMs: Math.min(options.relayTimeoutMs, 30_000) });
    if (result === "valid") {
      if (checkedKeys.size >= 10_000) checkedKeys.clear();
      checkedKeys.set(fp, now() + options.keyCheckCacheMs);
    } else {
      checkedKeys.delete(fp);
    }
    return result;
  };

  /**
   * @param {import("smtp-server").SMTPServerDataStream} stream
   * @param {SMTPServerSession} session
   * @param {(err?: Error | null, message?: string) => void} callback
   */
  const handleData = async (stream, session, callback) => {
    const started = now();
    const apiKey = stateOf(session).apiKey;
    // Both were checked at MAIL/RCPT to have an ASCII form.
    const mailFrom = session.envelope.mailFrom ? (asciiEnvelopeAddress(session.envelope.mailFrom.address) ?? "") : "";
    const recipients = session.envelope.rcptTo.map((r) => asciiEnvelopeAddress(r.address) ?? r.address);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException("the relay did not answer in time", "TimeoutError")), options.relayTimeoutMs);
    const body = new PassThrough();
    let ended = false;
    let oversize = false;
    stream.on("end", () => {
      ended = true;
    });
    stream.on("data", () => {
      if (stream.sizeExceeded && !oversize) {
        oversize = true;
        // Cut the upload short so the relay never sees a complete message; keep reading the client's data
        // so smtp-server can answer once the final dot arrives.
        stream.unpipe(body);
        body.destroy();
        controller.abort(new Error("message over the size limit"));
        stream.resume();
      }
    });
    // The client went away mid-message: abort the upload so the relay gets no complete message to accept.
    stream.on("error", () => controller.abort(new Error("client connection lost")));
    stream.on("close", () => {
      if (!ended) controller.abort(new Error("client connection lost"));
    });
    if (options.addReceived) body.write(receivedHeader(session, options.hostname, new Date(now())));
    stream.pipe(body);

    /** @type {import("./smtp-verdict.js").Verdict} */
    let verdict;
    let relayStatus = "-";
    let relayId = "-";
    try {
      if (!apiKey) throw new Error("no API key for this transaction");
      const answer = await postRawMessage({
        relayUrl: options.relayUrl,
        apiKey,
        mailFrom,
        recipients,
        clientHelo: session.hostNameAppearsAs || null,
        clientProtocol: session.transmissionType || null,
        body,
        signal: controller.signal,
        fetch: deps.fetch,
      });
      relayStatus = answer.kind === "unreachable" ? answer.reason : String(answer.status);
      if (answer.kind === "accepted" && answer.id) relayId = answer.id;
      verdict = oversize
        ? { accepted: false, reply: { code: 552, enhanced: "5.3.4", text: `message exceeds the size limit of ${options.maxMessageBytes} bytes` }, suppressedRecipients: [], refusedRecipient: null, refusedSenderDomain: null }
        : verdictFor(answer, { recipients });
    } finally {
      clearTimeout(timer);
      // An answer that came before the whole message was read (a refusal, a dead relay) still has to wait
      // for the client's final dot: drain the rest so smtp-server can reply.
      if (!ended) {
        stream.unpipe(body);
        body.destroy();
        stream.resume();
      }
    }

    const fp = keyFingerprint(apiKey);
    for (const r of verdict.suppressedRecipients) refusals.remember(`rcpt:${fp}:${r.toLowerCase()}`);
    if (verdict.refusedRecipient && verdict.reply.enhanced === "5.7.1") refusals.remember(`rcpt:${fp}:${verdict.refusedRecipient.toLowerCase()}`);
    // Remembered only when it is the envelope sender's domain (the relay may have refused the From header's).
    const fromDomain = mailFrom.slice(mailFrom.lastIndexOf("@") + 1).toLowerCase();
    if (verdict.refusedSenderDomain && mailFrom && verdict.refusedSenderDomain === fromDomain) refusals.remember(`from:${fp}:${fromDomain}`);

    const { reply } = verdict;
    log(
      [
        `edge-relay-bridge tx`,
        `session=${session.id}`,
        `client=${session.remoteAddress}`,
        `auth=${stateOf(session).via ?? "-"}`,
        `key=${fp.slice(0, 8)}`,
        `from=<${logValue(mailFrom)}>`,
        `rcpts=${recipients.length}`,
        `bytes=${stream.byteLength ?? 0}`,
        `relay=${relayStatus}`,
        `id=${logValue(relayId)}`,
        `reply=${logValue(`${reply.code} ${reply.enhanced} ${reply.text}`)}`,
        `ms=${now() - started}`,
      ].join(" "),
    );
    if (verdict.accepted) callback(null, replyText(reply));
    else callback(smtpError(reply.code, reply.enhanced, reply.text));
  };

  /** @param {boolean} secure */
  const createServer = (secure) =>
    new SMTPServer({
      name: options.hostname,
      banner: "Edge Relay SMTP bridge",
      secure,
      ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
      // Without a certificate of the operator's own there is no STARTTLS (smtp-server would otherwise offer
      // its bundled, publicly known test certificate).
      disabledCommands: options.tls ? [] : ["STARTTLS"],
      authMethods: ["PLAIN", "LOGIN"],
      authOptional: true,
      allowInsecureAuth: options.allowInsecureAuth,
      size: options.maxMessageBytes,
      // PIPELINING, 8BITMIME and SMTPUTF8 are advertised by default. ENHANCEDSTATUSCODES stays unadvertised
      // because smtp-server would prefix its generic codes to ours; our replies carry RFC 3463 codes anyway.
      hideENHANCEDSTATUSCODES: true,
      hideDSN: true,
      hideREQUIRETLS: true,
      // The bridge checks address syntax itself (validEnvelopeAddress), so a bad address gets 553 with an
      // enhanced code rather than smtp-server's bare 501; a line without <...> still gets its 501.
      lenientAddressParsing: true,
      disableReverseLookup: true,
      maxClients: options.maxClients,
      closeTimeout: options.shutdownTimeoutMs,
      logger: commandLogger,
      onConnect(session, callback) {
        if (shuttingDown) return callback(refuse("connect", session, "", smtpError(421, "4.3.2", "the bridge is shutting down; try again later")));
        callback();
      },
      onAuth(auth, session, callback) {
        /** @type {(code: number, enhanced: string, text: string) => void} */
        const fail = (code, enhanced, text) => callback(refuse("auth", session, auth.username ?? "", smtpError(code, enhanced, text)));
        const password = auth.password ?? "";
        if (!password) return fail(535, "5.7.8", "authentication failed: the password must be an Edge Relay API key");
        // A key with CR, LF, spaces or other non-printable characters can never be valid (nor sent as a header):
        // a permanent failure, so the client stops retrying (454 would make it retry forever).
        if (!/^[\x21-\x7e]+$/.test(password)) return fail(535, "5.7.8", "authentication failed: the API key contains characters no key has");
        verifyKey(password).then(
          (result) => {
            if (result === "valid") {
              const s = stateOf(session);
              s.apiKey = password;
              s.via = "auth";
              return callback(null, { user: auth.username || "apikey" });
            }
            if (result === "unavailable") return fail(454, "4.7.0", "temporary authentication failure: the relay is unreachable");
            fail(535, "5.7.8", result === "suspended" ? "authentication failed: the account is suspended" : "authentication failed: the API key is not valid");
          },
          (e) => fail(454, "4.7.0", `temporary authentication failure: ${e instanceof Error ? e.message : String(e)}`),
        );
      },
      onMailFrom(address, session, callback) {
        /** @type {(code: number, enhanced: string, text: string) => void} */
        const fail = (code, enhanced, text) => callback(refuse("mail", session, address.address, smtpError(code, enhanced, text)));
        if (shuttingDown) return fail(421, "4.3.2", "the bridge is shutting down; try again later");
        const s = stateOf(session);
        if (s.via !== "auth") {
          const trusted = options.trustedKey !== null && options.trustedNetworks.contains(session.remoteAddress);
          s.apiKey = trusted ? options.trustedKey : null;
          s.via = trusted ? "trusted" : null;
        }
        if (!s.apiKey) return fail(530, "5.7.0", "authentication required: AUTH with an Edge Relay API key as the password");
        const dsn = dsnParams(address.args, DSN_MAIL_PARAMS);
        if (dsn) return fail(555, "5.5.4", `${dsn.join(", ")} not supported: this server does not offer DSN (RFC 3461)`);
        // An ASCII address goes on as written (an A-label is not turned into Unicode), see addressAsWritten.
        address.address = writtenAddress(address, session);
        const from = address.address;
        if (from && !validEnvelopeAddress(from)) return fail(553, "5.1.7", `<${from}> is not a valid sender address`);
        const problem = from ? nonAsciiProblem(from, session) : null;
        if (problem) return fail(553, "5.6.7", problem);
        const domain = (asciiEnvelopeAddress(from) ?? from).slice(from.lastIndexOf("@") + 1).toLowerCase();
        if (from && refusals.has(`from:${keyFingerprint(s.apiKey)}:${domain}`)) {
          return fail(550, "5.7.1", `the relay refused sender domain ${domain} for this API key`);
        }
        callback();
      },
      onRcptTo(address, session, callback) {
        /** @type {(code: number, enhanced: string, text: string) => void} */
        const fail = (code, enhanced, text) => callback(refuse("rcpt", session, address.address, smtpError(code, enhanced, text)));
        if (session.envelope.rcptTo.length >= options.maxRecipients) return fail(452, "4.5.3", `too many recipients; at most ${options.maxRecipients} per message`);
        const dsn = dsnParams(address.args, DSN_RCPT_PARAMS);
        if (dsn) return fail(555, "5.5.4", `${dsn.join(", ")} not supported: this server does not offer DSN (RFC 3461)`);
        address.address = writtenAddress(address, session);
        const to = address.address;
        if (!validEnvelopeAddress(to)) return fail(553, "5.1.3", `<${to}> is not a valid recipient address`);
        const problem = nonAsciiProblem(to, session);
        if (problem) return fail(553, "5.6.7", problem);
        const key = stateOf(session).apiKey;
        if (key && refusals.has(`rcpt:${keyFingerprint(key)}:${(asciiEnvelopeAddress(to) ?? to).toLowerCase()}`)) {
          return fail(550, "5.7.1", `<${to}> is on the relay's suppression list`);
        }
        callback();
      },
      onData(stream, session, callback) {
        /** @type {Promise<void>} */
        const done = handleData(stream, session, callback).catch((e) => {
          log(`edge-relay-bridge error session=${session.id} ${logValue(e instanceof Error ? e.message : String(e))}`);
          callback(smtpError(451, "4.3.0", "local error in the bridge; try again later"));
        });
        inFlight.add(done);
        done.finally(() => inFlight.delete(done));
      },
      onClose(session) {
        sessions.delete(session.id);
        addressLines.delete(session.id);
      },
    });

  /** @type {{ server: SMTPServer, secure: boolean }[]} */
  const servers = [];
  /**
   * @param {SMTPServer} server
   * @param {{ host: string, port: number }} at
   * @returns {Promise<{ host: string, port: number }>}
   */
  const listen = (server, at) =>
    new Promise((resolve, reject) => {
      server.server.once("error", reject);
      server.listen(at.port, at.host, () => {
        server.server.off("error", reject);
        const address = server.server.address();
        resolve({ host: at.host, port: typeof address === "object" && address ? address.port : at.port });
      });
    });

  /** @type {Bridge["addresses"]} */
  const addresses = { listen: null, listenTls: null };
  try {
    if (options.listen) {
      const server = createServer(false);
      server.on("error", (e) => log(`edge-relay-bridge smtp-error ${logValue(e.message)}`));
      servers.push({ server, secure: false });
      addresses.listen = await listen(server, options.listen);
    }
    if (options.listenTls) {
      const server = createServer(true);
      server.on("error", (e) => log(`edge-relay-bridge smtp-error ${logValue(e.message)}`));
      servers.push({ server, secure: true });
      addresses.listenTls = await listen(server, options.listenTls);
    }
  } catch (e) {
    await Promise.all(servers.map(({ server }) => new Promise((r) => server.close(() => r(undefined)))));
    throw e;
  }

  return {
    addresses,
    inFlight: () => inFlight.size,
    async close() {
      if (shuttingDown) return;
      shuttingDown = true;
      // server.close() stops accepting at once; its closeTimeout is the hard limit for what follows.
      const closed = servers.map(({ server }) => new Promise((r) => server.close(() => r(undefined))));
      const deadline = new Promise((r) => setTimeout(r, options.shutdownTimeoutMs).unref());
      await Promise.race([Promise.allSettled([...inFlight]), deadline]);
      for (const { server } of servers) {
        for (const connection of /** @type {Set<LiveConnection>} */ (/** @type {unknown} */ (server.connections))) {
          connection.send(421, "4.3.2 the bridge is shutting down; try again later");
          connection.close();
        }
      }
      await Promise.all(closed);
    },
  };
}
