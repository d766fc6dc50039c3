import type { HubProtocol } from "./hub-protocol.js";
import { JsonHubProtocol } from "./json-hub-protocol.js";
import { MessagePackHubProtocol } from "./messagepack-hub-protocol.js";

// Codec instances hold no per-connection state, so one of each serves every connection.
const protocolsByName: ReadonlyMap<string, HubProtocol> = new Map<string, HubProtocol>([
  ["json", new JsonHubProtocol()],
  ["messagepack", new MessagePackHubProtocol()],
]);

/** The names of the built-in hub protocols, in order of preference. */
export const builtInProtocolNames: readonly string[] = [...protocolsByName.keys()];

/**
 * The built-in codec for a handshake's protocol name. Names match case-insensitively, as in ASP.NET Core.
 * @param name the `protocol` of the handshake request
 * @param enabled if given, only these protocol names are accepted (compared case-insensitively)
 * @returns a shared codec instance, or undefined when the protocol is unknown or not enabled
 */
export function resolveProtocol(name: string, enabled?: readonly string[]): HubProtocol | undefined {
  const key = name.toLowerCase();
  if (enabled !== undefined && !enabled.some((candidate) => candidate.toLowerCase() === key)) {
    return undefined;
  }
  return protocolsByName.get(key);
}
