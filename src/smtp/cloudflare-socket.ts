/**
 * SocketFactory for the Workers runtime, over `connect()` from `cloudflare:sockets`. The Workers `Socket` already
 * has the shape the client needs, so this only adapts the types.
 */
import { connect } from "cloudflare:sockets";
import type { SmtpSocket, SocketFactory } from "./socket";

function wrap(socket: Socket): SmtpSocket {
  return {
    readable: socket.readable as ReadableStream<Uint8Array>,
    writable: socket.writable as WritableStream<Uint8Array>,
    closed: socket.closed,
    opened: socket.opened,
    close: () => socket.close(),
    startTls: (opts) =>
      wrap(socket.startTls(opts?.expectedServerHostname ? { expectedServerHostname: opts.expectedServerHostname } : undefined)),
  };
}

/** Connects with `cloudflare:sockets`. Note that Cloudflare's network refuses outbound port 25. */
export const cloudflareSocketFactory: SocketFactory = (address, options) =>
  wrap(connect(address, { secureTransport: options.secureTransport, allowHalfOpen: options.allowHalfOpen }));
