/** The private-address filter and strict CIDR parsing (issue 15, findings 6 and 7). */
import { describe, expect, it } from "vitest";
import { destinationAllowed, isPublicAddress, parseCidr } from "../../src/delivery/private-networks";

describe("isPublicAddress", () => {
  it("refuses loopback, RFC 1918, link-local/metadata, CGNAT, ULA, multicast and mapped forms of them", () => {
    for (const ip of ["127.0.0.1", "10.9.8.7", "172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:a9fe:a9fe", "ff02::1"]) {
      expect(isPublicAddress(ip), ip).toBe(false);
    }
  });
  it("takes public addresses", () => {
    for (const ip of ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e", "::ffff:8.8.8.8"]) {
      expect(isPublicAddress(ip), ip).toBe(true);
    }
  });
  it("is false for anything that is not an address", () => {
    for (const v of ["", "localhost", "1.2.3", "1.2.3.256", "01.2.3.4", "::g", "1:2:3:4:5:6:7:8:9"]) expect(isPublicAddress(v), v).toBe(false);
  });
});

describe("parseCidr", () => {
  it("parses network/prefix for both families", () => {
    expect(parseCidr("10.0.0.0/8")).toMatchObject({ version: 4, prefix: 8 });
    expect(parseCidr("::1/128")).toMatchObject({ version: 6, prefix: 128 });
    expect(parseCidr("fd00::/8")).toMatchObject({ version: 6, prefix: 8 });
  });
  it("refuses garbage instead of reading a prefix out of it", () => {
    for (const c of ["10.0.0.0/8/garbage", "10.0.0.0/8x", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0", "10.0.0.0/", "/8", "10.0.0.0/08", " 10.0.0.0/8 x", "::1/129"]) {
      expect(parseCidr(c), c).toBeNull();
    }
  });
});

describe("destinationAllowed", () => {
  it("allows a private address only inside an allowed CIDR; names are not addresses", () => {
    expect(destinationAllowed("127.0.0.1", [])).toBe(false);
    expect(destinationAllowed("127.0.0.1", ["127.0.0.0/8"])).toBe(true);
    expect(destinationAllowed("10.0.0.1", ["127.0.0.0/8"])).toBe(false);
    expect(destinationAllowed("[::1]", ["::1/128"])).toBe(true);
    expect(destinationAllowed("localhost", [])).toBe(false);
    expect(destinationAllowed("mx.example.com", [])).toBe(true);
    expect(destinationAllowed("93.184.216.34", [])).toBe(true);
  });
});
