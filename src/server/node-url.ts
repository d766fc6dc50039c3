import type { AddressInfo } from "node:net";
import { networkInterfaces } from "node:os";

/**
 * The URL other nodes reach this node at, when the `nodeUrl` option does not say: the address the server
 * listens on, or for a wildcard address (0.0.0.0, ::) this machine's first external IPv4 address (the
 * one peers on the same network reach), else the loopback.
 */
export function defaultNodeUrl(address: AddressInfo): string {
  const wildcard = address.address === "0.0.0.0" || address.address === "::";
  const host = wildcard ? (firstExternalIPv4() ?? "127.0.0.1") : address.address;
  return `http://${host.includes(":") ? `[${host}]` : host}:${address.port}`;
}

function firstExternalIPv4(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const entry of addresses ?? []) {
      if (entry.family === "IPv4" && !entry.internal) return entry.address;
    }
  }
  return undefined;
}
