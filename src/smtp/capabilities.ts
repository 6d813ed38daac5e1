/** Parsing of the EHLO reply into the service extensions the client uses (RFC 5321 4.1.1.1 and the extension RFCs). */
import type { SmtpReply } from "./reply";

export interface SmtpCapabilities {
  /** The server's greeting name from the first EHLO line. */
  serverName: string;
  /** False when the server only understood HELO (no extensions). */
  esmtp: boolean;
  pipelining: boolean; // RFC 2920
  /** Advertised SIZE limit in bytes; 0 when SIZE is offered without a limit; undefined when not offered. */
  size?: number; // RFC 1870
  eightBitMime: boolean; // RFC 6152
  smtputf8: boolean; // RFC 6531
  startTls: boolean; // RFC 3207
  /** Upper-cased SASL mechanisms from AUTH (and the pre-standard "AUTH=" form). */
  auth: string[]; // RFC 4954
  enhancedStatusCodes: boolean; // RFC 2034
  dsn: boolean; // RFC 3461
  chunking: boolean; // RFC 3030
  /** Every keyword with its parameters, upper-cased keyword -> parameter string. */
  all: Map<string, string>;
}

/** Capabilities of a server that answered HELO only. */
export function heloCapabilities(reply: SmtpReply): SmtpCapabilities {
  return { ...emptyCapabilities(), serverName: firstWord(reply.lines[0] ?? "") };
}

/** Parses a 250 reply to EHLO. */
export function parseEhloReply(reply: SmtpReply): SmtpCapabilities {
  const caps = emptyCapabilities();
  caps.esmtp = true;
  caps.serverName = firstWord(reply.lines[0] ?? "");
  const auth = new Set<string>();
  for (const line of reply.lines.slice(1)) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(trimmed);
    if (!m) continue;
    const keyword = m[1]!.toUpperCase();
    const params = (m[2] ?? "").trim();
    caps.all.set(keyword, params);
    switch (keyword) {
      case "PIPELINING":
        caps.pipelining = true;
        break;
      case "SIZE": {
        const n = Number(params || "0");
        caps.size = Number.isFinite(n) && n >= 0 ? n : 0;
        break;
      }
      case "8BITMIME":
        caps.eightBitMime = true;
        break;
      case "SMTPUTF8":
        caps.smtputf8 = true;
        break;
      case "STARTTLS":
        caps.startTls = true;
        break;
      case "AUTH":
        for (const mech of params.split(/[\s=]+/)) if (mech) auth.add(mech.toUpperCase());
        break;
      case "ENHANCEDSTATUSCODES":
        caps.enhancedStatusCodes = true;
        break;
      case "DSN":
        caps.dsn = true;
        break;
      case "CHUNKING":
        caps.chunking = true;
        break;
    }
  }
  caps.auth = [...auth];
  return caps;
}

function emptyCapabilities(): SmtpCapabilities {
  return {
    serverName: "",
    esmtp: false,
    pipelining: false,
    eightBitMime: false,
    smtputf8: false,
    startTls: false,
    auth: [],
    enhancedStatusCodes: false,
    dsn: false,
    chunking: false,
    all: new Map(),
  };
}

function firstWord(s: string): string {
  return s.trim().split(/\s+/)[0] ?? "";
}
