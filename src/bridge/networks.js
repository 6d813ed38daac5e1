// @ts-check
/** Trusted client networks given as CIDR blocks (IPv4 and IPv6), matched with Node's net.BlockList. */
import { BlockList, isIP } from "node:net";

/**
 * @typedef {object} NetworkList
 * @property {number} size  how many blocks were given
 * @property {(address: string) => boolean} contains
 * @property {string[]} blocks  the blocks as given, for the start-up log
 */

/**
 * Parses "10.0.0.0/8, 192.168.1.7, ::1/128" (a bare address is a /32 or /128).
 * @param {string} text
 * @returns {NetworkList}
 */
export function parseNetworks(text) {
  const list = new BlockList();
  const blocks = text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  for (const block of blocks) {
    // Strictly "address" or "address/prefix": "10.0.0.0/8/garbage" is an error, not /8.
    const m = /^([^/]+)(?:\/(0|[1-9]\d{0,2}))?$/.exec(block);
    if (!m) throw new Error(`"${block}" is not an IP address or CIDR block (address/prefix)`);
    const [, address = "", prefixText] = m;
    const family = isIP(address);
    if (family === 0) throw new Error(`"${block}" is not an IP address or CIDR block`);
    const max = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? max : Number(prefixText);
    if (prefix > max) throw new Error(`"${block}" has an invalid prefix length`);
    list.addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return {
    size: blocks.length,
    blocks,
    contains(address) {
      // Dual-stack sockets report IPv4 clients as IPv4-mapped IPv6 addresses (::ffff:10.1.2.3).
      const plain = address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, "");
      const family = isIP(plain);
      if (family === 0) return false;
      return list.check(plain, family === 4 ? "ipv4" : "ipv6");
    },
  };
}
