/**
 * The byte-stream socket the SMTP client talks through, shaped like the Workers `Socket` from
 * `cloudflare:sockets`, so the Workers adapter is a thin pass-through and other runtimes (Node) wrap into it.
 */

/** A connected, duplex byte stream. */
export interface SmtpSocket {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  /** Resolves when the connection is closed (by either side), rejects on a socket error. */
  closed: Promise<void>;
  /**
   * Resolves once the connection (and, for TLS sockets, the handshake) is established; rejects when it fails.
   * Optional: adapters that cannot tell leave it out and failures surface on the first read or write.
   */
  opened?: Promise<unknown>;
  close(): Promise<void>;
  /**
   * Upgrades to TLS (STARTTLS). The caller must have released its reader and writer first; the returned socket
   * replaces this one.
   */
  startTls(opts?: { expectedServerHostname?: string }): SmtpSocket;
}

/** Opens sockets; injected so the client runs on Workers (`cloudflare:sockets`), in Node, and in tests. */
export type SocketFactory = (
  address: { hostname: string; port: number },
  options: { secureTransport: "off" | "on" | "starttls"; allowHalfOpen: boolean; expectedServerHostname?: string },
) => SmtpSocket;
