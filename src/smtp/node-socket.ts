/**
 * SocketFactory for Node (node:net / node:tls), wrapping a Node socket into the same web-stream shape as the
 * Workers `Socket`. Used by unit tests, benchmarks and the Node bridge. Not for the Workers bundle.
 */
import { connect as netConnect, type Socket as NetSocket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { SmtpSocket, SocketFactory } from "./socket";

export interface NodeSocketFactoryOptions {
  /**
   * Verify server certificates (default true). Tests against self-signed peers set this to false;
   * never do that for real mail.
   */
  rejectUnauthorized?: boolean;
  /** Extra trusted CA certificates (PEM). */
  ca?: string | string[];
  /** TCP connect timeout; the client also applies its own. */
  connectTimeoutMs?: number;
}

/** Returns a SocketFactory over node:net / node:tls. */
export function createNodeSocketFactory(factoryOptions: NodeSocketFactoryOptions = {}): SocketFactory {
  const tlsOptions = { rejectUnauthorized: factoryOptions.rejectUnauthorized ?? true, ca: factoryOptions.ca };
  return (address, options) => {
    if (options.secureTransport === "on") {
      const s = tlsConnect({
        host: address.hostname,
        port: address.port,
        servername: sniName(options.expectedServerHostname ?? address.hostname),
        ...tlsOptions,
      });
      return wrapNodeSocket(s, "secureConnect", tlsOptions, options.secureTransport);
    }
    const s = netConnect({ host: address.hostname, port: address.port });
    return wrapNodeSocket(s, "connect", tlsOptions, options.secureTransport);
  };
}

/** SNI must be a host name, not an IP address (RFC 6066 section 3). */
function sniName(host: string): string | undefined {
  return /^[\d.]+$/.test(host) || host.includes(":") ? undefined : host;
}

function wrapNodeSocket(
  socket: NetSocket | TLSSocket,
  openEvent: "connect" | "secureConnect",
  tlsOptions: { rejectUnauthorized: boolean; ca?: string | string[] },
  secureTransport: "off" | "on" | "starttls",
): SmtpSocket {
  socket.setNoDelay(true);
  let detached = false;
  const opened = new Promise<void>((resolve, reject) => {
    socket.once(openEvent, () => resolve());
    socket.once("error", reject);
  });
  opened.catch(() => undefined);
  const closed = new Promise<void>((resolve, reject) => {
    let error: Error | undefined;
    socket.on("error", (e) => (error = e));
    socket.once("close", () => (error && !detached ? reject(error) : resolve()));
  });
  closed.catch(() => undefined);

  let onData: ((chunk: Buffer) => void) | undefined;
  let onEnd: (() => void) | undefined;
  let onError: ((e: Error) => void) | undefined;
  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        onData = (chunk) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 1) <= 0) socket.pause();
        };
        onEnd = () => {
          try {
            controller.close();
          } catch {
            // already closed or errored
          }
        };
        onError = (e) => {
          try {
            controller.error(e);
          } catch {
            // already closed or errored
          }
        };
        socket.on("data", onData);
        socket.once("end", onEnd);
        socket.once("close", onEnd);
        socket.once("error", onError);
      },
      pull() {
        socket.resume();
      },
      cancel() {
        socket.destroy();
      },
    },
    { highWaterMark: 16 },
  );
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return new Promise<void>((resolve, reject) => {
        if (socket.destroyed) return reject(new Error("socket is closed"));
        socket.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    },
    close() {
      return new Promise<void>((resolve) => socket.end(resolve));
    },
    abort() {
      socket.destroy();
    },
  });

  return {
    readable,
    writable,
    opened,
    closed,
    close: async () => {
      socket.destroy();
      await closed.catch(() => undefined);
    },
    startTls(opts) {
      if (secureTransport !== "starttls") throw new Error("startTls() needs secureTransport: 'starttls'");
      // Hand the raw socket to TLS: stop feeding the plaintext stream (bytes buffered after the server's
      // 220 must never be read as post-TLS data; see CVE-2011-0411).
      detached = true;
      if (onData) socket.off("data", onData);
      if (onEnd) {
        socket.off("end", onEnd);
        socket.off("close", onEnd);
      }
      if (onError) socket.off("error", onError);
      socket.pause();
      const host = opts?.expectedServerHostname;
      const secure = tlsConnect({ socket, servername: host ? sniName(host) : undefined, ...tlsOptions });
      return wrapNodeSocket(secure, "secureConnect", tlsOptions, "on");
    },
  };
}
