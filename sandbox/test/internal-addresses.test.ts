import { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { canonicalAddress, internalAddressReason } from "../src/internal-addresses.js";

describe("internalAddressReason", () => {
  it.each([
    ["127.0.0.1", /loopback/],
    ["10.1.2.3", /private/],
    ["172.17.0.1", /private/],
    ["192.168.1.1", /private/],
    ["100.100.100.200", /CGNAT/],
    ["169.254.169.254", /metadata/],
    ["0.0.0.0", /this network/],
    ["::1", /loopback/],
    ["[::1]", /loopback/],
    ["::ffff:127.0.0.1", /loopback/],
    ["::ffff:7f00:1", /loopback/],
    ["::ffff:a9fe:a9fe", /link-local/],
    ["fd00:ec2::254", /unique local/],
    ["64:ff9b::a9fe:a9fe", /NAT64/],
    ["fe80::1%eth0", /link-local/],
    ["ff02::1", /multicast/],
    // Spellings the first version let through as public (fixed: one canonical form first).
    ["0:0:0:0:0:ffff:7f00:1", /loopback/],
    ["0:0:0:0:0:FFFF:169.254.169.254", /link-local/],
    ["::7f00:1", /IPv4-compatible/],
    ["::ffff:0:7f00:1", /IPv4-translated/],
  ])("%s is internal", (address, reason) => {
    expect(internalAddressReason(address)).toMatch(reason);
  });

  it.each(["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "example.com"])("%s is not", (address) => {
    expect(internalAddressReason(address)).toBeNull();
  });

  it("knows this host's own interface addresses", () => {
    const own = Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .map((i) => canonicalAddress(i.address));
    expect(own.length).toBeGreaterThan(0);
    for (const a of own) expect(internalAddressReason(a)).not.toBeNull();
  });
});
