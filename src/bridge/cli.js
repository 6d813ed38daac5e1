// @ts-check
/**
 * `edge-relay` command line: `edge-relay bridge [options]` runs the SMTP bridge until SIGINT/SIGTERM, then
 * stops accepting, lets transactions in flight finish (up to --shutdown-timeout) and exits 0.
 */
import { BridgeConfigError, bridgeHelp, parseBridgeArgs } from "./options.js";
import { startBridge } from "./server.js";

const USAGE = `Usage: edge-relay <command> [options]

Commands:
  bridge    run the SMTP bridge (an SMTP server in front of Edge Relay's HTTP API); see: edge-relay bridge --help
`;

/**
 * @param {string[]} argv  arguments after the program name
 * @param {Record<string, string | undefined>} env
 * @param {{ out?: (text: string) => void, err?: (text: string) => void, signals?: NodeJS.EventEmitter }} [io]
 * @returns {Promise<number>} the exit code
 */
export async function runCli(argv, env, io = {}) {
  const out = io.out ?? ((text) => process.stdout.write(text));
  const err = io.err ?? ((text) => process.stderr.write(text));
  const signals = io.signals ?? process;
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    out(USAGE);
    return command ? 0 : 2;
  }
  if (command !== "bridge") {
    err(`edge-relay: unknown command "${command}"\n${USAGE}`);
    return 2;
  }
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 20) {
    err(`edge-relay bridge needs Node 20 or later (this is ${process.versions.node})\n`);
    return 1;
  }

  /** @type {ReturnType<typeof parseBridgeArgs>} */
  let parsed;
  try {
    parsed = parseBridgeArgs(rest, env);
  } catch (e) {
    if (e instanceof BridgeConfigError) {
      err(`edge-relay bridge: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    out(bridgeHelp());
    return 0;
  }
  const { options } = parsed;
  const log = (/** @type {string} */ line) => out(`${new Date().toISOString()} ${line}\n`);
  const bridge = await startBridge(options, { log });
  const where = [
    bridge.addresses.listen && `smtp://${bridge.addresses.listen.host}:${bridge.addresses.listen.port}${options.tls ? " (STARTTLS)" : ""}`,
    bridge.addresses.listenTls && `smtps://${bridge.addresses.listenTls.host}:${bridge.addresses.listenTls.port}`,
  ].filter(Boolean);
  log(
    `edge-relay-bridge listening ${where.join(" ")} relay=${options.relayUrl.origin} max_size=${options.maxMessageBytes}` +
      ` trusted_networks=${options.trustedNetworks.blocks.join(",") || "-"} insecure_auth=${options.allowInsecureAuth ? "allowed" : "refused"}`,
  );

  return new Promise((resolve) => {
    let stopping = false;
    const stop = (/** @type {string} */ signal) => {
      if (stopping) {
        log(`edge-relay-bridge ${signal} again: exiting now with ${bridge.inFlight()} transaction(s) in flight`);
        resolve(1);
        return;
      }
      stopping = true;
      log(`edge-relay-bridge ${signal}: no new connections; waiting for ${bridge.inFlight()} transaction(s) in flight`);
      bridge.close().then(
        () => {
          log("edge-relay-bridge stopped");
          resolve(0);
        },
        (e) => {
          err(`edge-relay bridge: error while stopping: ${e instanceof Error ? e.message : String(e)}\n`);
          resolve(1);
        },
      );
    };
    signals.on("SIGINT", () => stop("SIGINT"));
    signals.on("SIGTERM", () => stop("SIGTERM"));
  });
}
