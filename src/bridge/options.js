// @ts-check
/**
 * Settings of the SMTP bridge, read from command-line flags with environment variables as fallback, checked
 * once at start-up. Plain ESM JavaScript (types in JSDoc) so `npx edge-relay bridge` runs on the user's Node 20+
 * without a build step.
 */
import { readFileSync } from "node:fs";
import { hostname as osHostname } from "node:os";
import { parseNetworks } from "./networks.js";

/** The relay's own default MAX_MESSAGE_BYTES (wrangler.toml), so both ends advertise the same limit. */
export const DEFAULT_MAX_MESSAGE_BYTES = 26_214_400;
/** The relay's default MAX_RECIPIENTS; more RCPTs get 452 4.5.3 so the client splits the transaction (RFC 5321 §4.5.3.1.8). */
export const DEFAULT_MAX_RECIPIENTS = 50;
/** How long one POST to the relay may take before the client gets 451 4.4.2 (a 25 MB body on a slow uplink). */
export const DEFAULT_RELAY_TIMEOUT_MS = 120_000;
/** How long a shutdown waits for transactions in flight before closing connections anyway. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
/** How long a refusal learned from the relay (suppressed recipient, foreign sender domain) answers at RCPT/MAIL. */
export const DEFAULT_REFUSAL_MEMORY_MS = 300_000;
/** How long a successful API key check at AUTH is remembered, so busy clients do not check on every connection. */
export const DEFAULT_KEY_CHECK_CACHE_MS = 60_000;
/** Simultaneous SMTP connections; bounds memory and the relay requests one bridge can have open. */
export const DEFAULT_MAX_CLIENTS = 100;

export class BridgeConfigError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = "BridgeConfigError";
  }
}

/**
 * @typedef {object} ListenAddress
 * @property {string} host
 * @property {number} port
 */

/**
 * @typedef {object} BridgeOptions
 * @property {ListenAddress | null} listen  plain SMTP with STARTTLS (when a certificate is configured)
 * @property {ListenAddress | null} listenTls  implicit TLS (SMTPS, RFC 8314)
 * @property {URL} relayUrl  base URL of the relay; the bridge posts to `<relayUrl>/v1/messages/raw`
 * @property {{ key: Buffer, cert: Buffer } | null} tls
 * @property {import("./networks.js").NetworkList} trustedNetworks  clients that may send without AUTH
 * @property {string | null} trustedKey  the API key used for clients from trusted networks
 * @property {number} maxMessageBytes
 * @property {number} maxRecipients
 * @property {string} hostname  announced in the banner, EHLO and Received lines
 * @property {boolean} allowInsecureAuth  AUTH without TLS
 * @property {number} relayTimeoutMs
 * @property {number} shutdownTimeoutMs
 * @property {number} refusalMemoryMs
 * @property {number} keyCheckCacheMs
 * @property {number} maxClients
 * @property {boolean} addReceived  prepend a Received header (RFC 5321 §4.4)
 */

/** @typedef {{ name: string, env: string, value: string, help: string, default?: string }} FlagSpec */

/** @type {FlagSpec[]} */
const FLAGS = [
  { name: "listen", env: "EDGE_RELAY_BRIDGE_LISTEN", value: "HOST:PORT", default: "127.0.0.1:2525", help: "SMTP (submission with STARTTLS when a certificate is given); 'off' to disable" },
  { name: "listen-tls", env: "EDGE_RELAY_BRIDGE_LISTEN_TLS", value: "HOST:PORT", help: "also listen with implicit TLS (SMTPS, e.g. 0.0.0.0:465); needs --tls-cert/--tls-key" },
  { name: "relay", env: "EDGE_RELAY_URL", value: "URL", help: "base URL of the Edge Relay Worker, e.g. https://edge-relay.example.workers.dev (required)" },
  { name: "tls-cert", env: "EDGE_RELAY_BRIDGE_TLS_CERT", value: "FILE", help: "PEM certificate (chain) for STARTTLS and implicit TLS" },
  { name: "tls-key", env: "EDGE_RELAY_BRIDGE_TLS_KEY", value: "FILE", help: "PEM private key for the certificate" },
  { name: "trusted-networks", env: "EDGE_RELAY_BRIDGE_TRUSTED_NETWORKS", value: "CIDR,...", help: "clients from these networks may send without AUTH, using the trusted key" },
  { name: "trusted-key-file", env: "EDGE_RELAY_BRIDGE_TRUSTED_KEY_FILE", value: "FILE", help: "file holding the API key for trusted networks (or set EDGE_RELAY_BRIDGE_TRUSTED_KEY)" },
  { name: "max-size", env: "EDGE_RELAY_BRIDGE_MAX_SIZE", value: "BYTES", default: String(DEFAULT_MAX_MESSAGE_BYTES), help: "largest message, advertised with SIZE and enforced while reading" },
  { name: "max-recipients", env: "EDGE_RELAY_BRIDGE_MAX_RECIPIENTS", value: "N", default: String(DEFAULT_MAX_RECIPIENTS), help: "recipients per transaction; more get 452 4.5.3" },
  { name: "hostname", env: "EDGE_RELAY_BRIDGE_HOSTNAME", value: "NAME", help: "name in the banner, EHLO and Received lines (default: this host's name)" },
  { name: "relay-timeout", env: "EDGE_RELAY_BRIDGE_RELAY_TIMEOUT", value: "SECONDS", default: String(DEFAULT_RELAY_TIMEOUT_MS / 1000), help: "longest wait for the relay's verdict on one message" },
  { name: "shutdown-timeout", env: "EDGE_RELAY_BRIDGE_SHUTDOWN_TIMEOUT", value: "SECONDS", default: String(DEFAULT_SHUTDOWN_TIMEOUT_MS / 1000), help: "on SIGINT/SIGTERM, longest wait for transactions in flight" },
  { name: "refusal-memory", env: "EDGE_RELAY_BRIDGE_REFUSAL_MEMORY", value: "SECONDS", default: String(DEFAULT_REFUSAL_MEMORY_MS / 1000), help: "answer recipients/sender domains the relay refused at RCPT/MAIL for this long; 0 disables" },
  { name: "max-clients", env: "EDGE_RELAY_BRIDGE_MAX_CLIENTS", value: "N", default: String(DEFAULT_MAX_CLIENTS), help: "simultaneous SMTP connections" },
];

/** @type {{ name: string, env: string, help: string }[]} */
const SWITCHES = [
  { name: "allow-insecure-auth", env: "EDGE_RELAY_BRIDGE_ALLOW_INSECURE_AUTH", help: "allow AUTH without TLS (always allowed when listening on loopback only)" },
  { name: "no-received", env: "EDGE_RELAY_BRIDGE_NO_RECEIVED", help: "do not prepend a Received header" },
];

/**
 * True for localhost and loopback literals (127.0.0.0/8, ::1), the only hosts the bridge may reach over plain http.
 * @param {string} hostname  URL.hostname (IPv6 in brackets)
 */
export function isLoopbackHost(hostname) {
  const h = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1") return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  return m !== null && m.slice(1).every((x) => Number(x) <= 255);
}

/** The text of `edge-relay bridge --help`. */
export function bridgeHelp() {
  const rows = [
    ...FLAGS.map((f) => [`--${f.name} ${f.value}`, `${f.help}${f.default ? ` [${f.default}]` : ""} (env ${f.env})`]),
    ...SWITCHES.map((s) => [`--${s.name}`, `${s.help} (env ${s.env}=1)`]),
    ["--help", "show this text"],
  ];
  const width = Math.max(...rows.map((r) => r[0]?.length ?? 0)) + 2;
  return `Usage: edge-relay bridge --relay URL [options]

An SMTP server that hands every message to Edge Relay's HTTP API (POST /v1/messages/raw) and answers the
SMTP client with the relay's verdict: 250 only after the relay accepted the message (HTTP 202), 4xx when the
relay is unreachable or busy, 5xx when it refuses the message.

Clients authenticate with AUTH PLAIN or LOGIN: any user name, the password is an Edge Relay API key. Clients
from --trusted-networks may send without AUTH; their mail uses the trusted key.

Options:
${rows.map(([a, b]) => `  ${(a ?? "").padEnd(width)}${b}`).join("\n")}

Example:
  edge-relay bridge --listen 127.0.0.1:2525 --relay https://edge-relay.example.workers.dev
`;
}

/**
 * @param {string} text
 * @param {string} what
 * @returns {ListenAddress}
 */
export function parseListenAddress(text, what) {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) throw new BridgeConfigError(`${what} must be HOST:PORT (IPv6 as [::1]:2525), got "${text}"`);
  return { host: m[1] ?? m[2] ?? "", port };
}

/**
 * @param {string} text
 * @param {string} what
 * @param {{ min: number, max: number }} range
 */
function parseNumber(text, what, range) {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !(n >= range.min && n <= range.max)) {
    throw new BridgeConfigError(`${what} must be a number from ${range.min} to ${range.max}, got "${text}"`);
  }
  return n;
}

/** @param {string} host */
function isLoopback(host) {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/**
 * Reads the flags (`--name value` or `--name=value`) and the environment into checked options.
 * @param {string[]} argv  the arguments after `bridge`
 * @param {Record<string, string | undefined>} env
 * @param {{ readFile?: (path: string) => Buffer }} [io]
 * @returns {{ help: true } | { help: false, options: BridgeOptions }}
 */
export function parseBridgeArgs(argv, env, io = {}) {
  const readFile = io.readFile ?? ((path) => readFileSync(path));
  /** @type {Map<string, string>} */
  const given = new Map();
  /** @type {Set<string>} */
  const switches = new Set();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--help" || arg === "-h") return { help: true };
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) throw new BridgeConfigError(`unexpected argument "${arg}" (see --help)`);
    const name = m[1] ?? "";
    if (SWITCHES.some((s) => s.name === name)) {
      if (m[2] !== undefined) throw new BridgeConfigError(`--${name} takes no value`);
      switches.add(name);
      continue;
    }
    if (!FLAGS.some((f) => f.name === name)) throw new BridgeConfigError(`unknown option --${name} (see --help)`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new BridgeConfigError(`--${name} needs a value`);
    given.set(name, value);
  }
  /** @param {string} name */
  const get = (name) => {
    const spec = FLAGS.find((f) => f.name === name);
    if (!spec) throw new Error(`no flag ${name}`);
    const fromEnv = env[spec.env];
    return given.get(name) ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : spec.default);
  };
  /** @param {string} name */
  const on = (name) => {
    const spec = SWITCHES.find((s) => s.name === name);
    const fromEnv = spec ? env[spec.env] : undefined;
    return switches.has(name) || (fromEnv !== undefined && /^(1|true|yes|on)$/i.test(fromEnv));
  };

  const relayText = get("relay");
  if (!relayText) throw new BridgeConfigError("--relay URL (or EDGE_RELAY_URL) is required");
  /** @type {URL} */
  let relayUrl;
  try {
    relayUrl = new URL(relayText);
  } catch {
    throw new BridgeConfigError(`--relay must be a URL, got "${relayText}"`);
  }
  if (relayUrl.protocol !== "https:" && relayUrl.protocol !== "http:") throw new BridgeConfigError("--relay must be an http:// or https:// URL");
  if (relayUrl.username || relayUrl.password) throw new BridgeConfigError("--relay must not contain credentials; clients authenticate with their own API keys");
  // Every message carries its client's API key to the relay: in clear text only over this machine's loopback.
  if (relayUrl.protocol === "http:" && !isLoopbackHost(relayUrl.hostname)) {
    throw new BridgeConfigError(`--relay must be https:// (API keys would cross the network in clear text); http:// only for localhost, got "${relayText}"`);
  }

  const listenText = get("listen") ?? "off";
  const listen = listenText === "off" ? null : parseListenAddress(listenText, "--listen");
  const listenTlsText = get("listen-tls");
  const listenTls = listenTlsText ? parseListenAddress(listenTlsText, "--listen-tls") : null;
  if (!listen && !listenTls) throw new BridgeConfigError("nothing to listen on: give --listen or --listen-tls");

  const certFile = get("tls-cert");
  const keyFile = get("tls-key");
  if (Boolean(certFile) !== Boolean(keyFile)) throw new BridgeConfigError("--tls-cert and --tls-key go together");
  /** @type {{ key: Buffer, cert: Buffer } | null} */
  let tls = null;
  if (certFile && keyFile) {
    try {
      tls = { cert: readFile(certFile), key: readFile(keyFile) };
    } catch (e) {
      throw new BridgeConfigError(`cannot read the TLS certificate or key: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (listenTls && !tls) throw new BridgeConfigError("--listen-tls needs --tls-cert and --tls-key");

  /** @type {import("./networks.js").NetworkList} */
  let trustedNetworks;
  try {
    trustedNetworks = parseNetworks(get("trusted-networks") ?? "");
  } catch (e) {
    throw new BridgeConfigError(`--trusted-networks: ${e instanceof Error ? e.message : String(e)}`);
  }
  let trustedKey = env.EDGE_RELAY_BRIDGE_TRUSTED_KEY?.trim() || null;
  const trustedKeyFile = get("trusted-key-file");
  if (trustedKeyFile) {
    try {
      trustedKey = readFile(trustedKeyFile).toString("utf8").trim() || null;
    } catch (e) {
      throw new BridgeConfigError(`cannot read --trusted-key-file: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (trustedNetworks.size > 0 && !trustedKey) {
    throw new BridgeConfigError("--trusted-networks needs an API key: EDGE_RELAY_BRIDGE_TRUSTED_KEY or --trusted-key-file");
  }

  const seconds = (/** @type {string} */ name, /** @type {number} */ max) => Math.round(parseNumber(get(name) ?? "", `--${name}`, { min: 0, max }) * 1000);
  const loopbackOnly = [listen, listenTls].every((a) => !a || isLoopback(a.host));
  return {
    help: false,
    options: {
      listen,
      listenTls,
      relayUrl,
      tls,
      trustedNetworks,
      trustedKey,
      maxMessageBytes: parseNumber(get("max-size") ?? "", "--max-size", { min: 1024, max: 2 ** 40 }),
      maxRecipients: parseNumber(get("max-recipients") ?? "", "--max-recipients", { min: 1, max: 100_000 }),
      hostname: get("hostname") || osHostname(),
      allowInsecureAuth: on("allow-insecure-auth") || loopbackOnly,
      relayTimeoutMs: seconds("relay-timeout", 3600),
      shutdownTimeoutMs: seconds("shutdown-timeout", 3600),
      refusalMemoryMs: seconds("refusal-memory", 86_400),
      keyCheckCacheMs: DEFAULT_KEY_CHECK_CACHE_MS,
      maxClients: parseNumber(get("max-clients") ?? "", "--max-clients", { min: 1, max: 100_000 }),
      addReceived: !on("no-received"),
    },
  };
}
