/**
 * SocketFactory for the Workers runtime, over `connect()` from `cloudflare:sockets`. The Workers `Socket` already
 * has the shape the client needs, so this only adapts the types.
 */
import { connect } from "cloudflare:sockets";
import type { SmtpSocket, SocketFactory } from "./socket";

function wrap(socket: Socket, hostname: string): SmtpSocket {
  return {
    readable: socket.readable as ReadableStream<Uint8Array>,
    writable: socket.writable as WritableStream<Uint8Array>,
    closed: socket.closed,
    opened: socket.opened,
    close: () => socket.close(),
    // The runtime verifies the certificate against the connect() host name. expectedServerHostname is passed only
    // when it differs, because some workerd builds reject the option ("unsupported expectedServerHostname").
    startTls: (opts) => {
      const name = opts?.expectedServerHostname;
      return wrap(socket.startTls(name && name !== hostname ? { expectedServerHostname: name } : undefined), name ?? hostname);
    },
  };
}

/** Connects with `cloudflare:sockets`. Note that Cloudflare's network refuses outbound port 25. */
export const cloudflareSocketFactory: SocketFactory = (address, options) =>
  wrap(connect(address, { secureTransport: options.secureTransport, allowHalfOpen: options.allowHalfOpen }), address.hostname);
