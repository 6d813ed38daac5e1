// The bridge's command line and environment parsing, trusted networks, and envelope address handling.
import { describe, expect, it } from "vitest";
import { BridgeConfigError, bridgeHelp, parseBridgeArgs, parseListenAddress } from "../../src/bridge/options.js";
import { parseNetworks } from "../../src/bridge/networks.js";
import { asciiEnvelopeAddress } from "../../src/bridge/relay-client.js";

const files: Record<string, string> = { "/c.pem": "CERT", "/k.pem": "KEY", "/key.txt": "er_trusted\n" };
const readFile = (path: string) => {
  const f = files[path];
  if (f === undefined) throw new Error(`ENOENT: ${path}`);
  return Buffer.from(f);
};
const parse = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseBridgeArgs(argv, env, { readFile });
  if (r.help) throw new Error("unexpected help");
  return r.options;
};

describe("bridge options", () => {
  it("takes flags, with defaults matching the relay's limits", () => {
    const o = parse(["--relay", "https://relay.example/", "--listen=0.0.0.0:2525"]);
    expect(o.relayUrl.href).toBe("https://relay.example/");
    expect(o.listen).toEqual({ host: "0.0.0.0", port: 2525 });
    expect(o.listenTls).toBeNull();
    expect(o.maxMessageBytes).toBe(26_214_400);
    expect(o.maxRecipients).toBe(50);
    expect(o.relayTimeoutMs).toBe(120_000);
    expect(o.allowInsecureAuth).toBe(false);
    expect(o.addReceived).toBe(true);
  });

  it("falls back to environment variables; flags win", () => {
    const env = { EDGE_RELAY_URL: "http://127.0.0.1:8787", EDGE_RELAY_BRIDGE_MAX_SIZE: "1048576", EDGE_RELAY_BRIDGE_LISTEN: "127.0.0.1:2600" };
    const o = parse(["--max-size", "2048"], env);
    expect(o.relayUrl.origin).toBe("http://127.0.0.1:8787");
    expect(o.maxMessageBytes).toBe(2048);
    expect(o.listen).toEqual({ host: "127.0.0.1", port: 2600 });
    // Loopback-only listeners may take AUTH without TLS: nothing crosses the network.
    expect(o.allowInsecureAuth).toBe(true);
  });

  it("reads TLS files and the trusted key file", () => {
    const o = parse(["--relay", "https://r.example", "--listen", "[::]:587", "--listen-tls", "0.0.0.0:465", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--trusted-networks", "10.0.0.0/8, 192.168.1.7", "--trusted-key-file", "/key.txt"]);
    expect(o.tls?.cert.toString()).toBe("CERT");
    expect(o.listen).toEqual({ host: "::", port: 587 });
    expect(o.listenTls).toEqual({ host: "0.0.0.0", port: 465 });
    expect(o.trustedKey).toBe("er_trusted");
    expect(o.trustedNetworks.contains("10.20.30.40")).toBe(true);
    expect(o.trustedNetworks.contains("::ffff:10.1.2.3")).toBe(true);
    expect(o.trustedNetworks.contains("192.168.1.7")).toBe(true);
    expect(o.trustedNetworks.contains("192.168.1.8")).toBe(false);
  });

  it("refuses bad configuration with a clear message", () => {
    const bad: [string[], Record<string, string>, RegExp][] = [
      [[], {}, /--relay URL .* is required/],
      [["--relay", "ftp://x"], {}, /http:\/\/ or https:\/\//],
      [["--relay", "https://u:p@x"], {}, /must not contain credentials/],
      [["--relay", "https://x", "--listen", "2525"], {}, /HOST:PORT/],
      [["--relay", "https://x", "--listen-tls", "0.0.0.0:465"], {}, /needs --tls-cert/],
      [["--relay", "https://x", "--tls-cert", "/c.pem"], {}, /go together/],
      [["--relay", "https://x", "--tls-cert", "/c.pem", "--tls-key", "/missing"], {}, /cannot read/],
      [["--relay", "https://x", "--trusted-networks", "10.0.0.0/8"], {}, /needs an API key/],
      [["--relay", "https://x", "--trusted-networks", "10.0.0.0/33"], { EDGE_RELAY_BRIDGE_TRUSTED_KEY: "k" }, /invalid prefix/],
      [["--relay", "https://x", "--trusted-networks", "example.com"], { EDGE_RELAY_BRIDGE_TRUSTED_KEY: "k" }, /not an IP address/],
      [["--relay", "https://x", "--max-size", "big"], {}, /--max-size must be a number/],
      [["--relay", "https://x", "--bogus", "1"], {}, /unknown option --bogus/],
      [["--relay", "https://x", "--listen", "off"], {}, /nothing to listen on/],
      [["--relay"], {}, /needs a value/],
    ];
    for (const [argv, env, message] of bad) {
      expect(() => parseBridgeArgs(argv, env, { readFile }), argv.join(" ")).toThrow(BridgeConfigError);
      expect(() => parseBridgeArgs(argv, env, { readFile }), argv.join(" ")).toThrow(message);
    }
  });

  it("answers --help with every option and its environment variable", () => {
    expect(parseBridgeArgs(["--relay", "x", "--help"], {})).toEqual({ help: true });
    const help = bridgeHelp();
    for (const name of ["--listen", "--listen-tls", "--relay", "--tls-cert", "--trusted-networks", "--max-size", "EDGE_RELAY_URL", "EDGE_RELAY_BRIDGE_TRUSTED_KEY"]) {
      expect(help).toContain(name);
    }
  });

  it("parses listen addresses including IPv6 literals", () => {
    expect(parseListenAddress("[::1]:25", "x")).toEqual({ host: "::1", port: 25 });
    expect(parseListenAddress("localhost:0", "x")).toEqual({ host: "localhost", port: 0 });
    expect(() => parseListenAddress("host:70000", "x")).toThrow(BridgeConfigError);
  });
});

describe("bridge transport and networks (issue 15, finding 7)", () => {
  it("refuses a plain http:// relay that is not this machine: API keys would cross the network in clear text", () => {
    for (const url of ["http://remote-host", "http://relay.example:8787/", "http://10.0.0.5:8787", "http://127.0.0.1.evil.example/"]) {
      expect(() => parseBridgeArgs(["--relay", url, "--listen", "127.0.0.1:2525"], {}, { readFile }), url).toThrow(/must be https:\/\//);
    }
    for (const url of ["http://127.0.0.1:8787", "http://localhost:8787", "http://[::1]:8787", "https://relay.example"]) {
      expect(parse(["--relay", url, "--listen", "127.0.0.1:2525"]).relayUrl.href, url).toMatch(/^https?:\/\//);
    }
  });

  it("refuses malformed trusted networks at start instead of reading a prefix out of them", () => {
    for (const block of ["10.0.0.0/8/garbage", "10.0.0.0/8x", "10.0.0.0/08", "10.0.0.0/", "/8", "::1/128/0"]) {
      expect(() => parseNetworks(block), block).toThrow();
      expect(() => parseBridgeArgs(["--relay", "https://x", "--trusted-networks", block], { EDGE_RELAY_BRIDGE_TRUSTED_KEY: "k" }, { readFile }), block).toThrow(BridgeConfigError);
    }
    expect(parseNetworks("10.0.0.0/8").contains("10.200.0.1")).toBe(true);
  });
});

describe("trusted networks", () => {
  it("matches IPv6 blocks and ignores garbage addresses", () => {
    const n = parseNetworks("2001:db8::/32 ::1");
    expect(n.size).toBe(2);
    expect(n.contains("2001:db8::1")).toBe(true);
    expect(n.contains("::1")).toBe(true);
    expect(n.contains("2001:db9::1")).toBe(false);
    expect(n.contains("not-an-ip")).toBe(false);
    expect(parseNetworks("").contains("127.0.0.1")).toBe(false);
  });
});

describe("envelope addresses for the relay's headers", () => {
  it("keeps ASCII, turns IDN domains into A-labels, refuses non-ASCII local parts", () => {
    expect(asciiEnvelopeAddress("a.b+c@example.com")).toBe("a.b+c@example.com");
    expect(asciiEnvelopeAddress("info@bücher.example")).toBe("info@xn--bcher-kva.example");
    expect(asciiEnvelopeAddress("jörg@example.com")).toBeNull();
  });
});
