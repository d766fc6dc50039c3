/**
 * Send targets in the form every backplane writes and reads: a kind number, the named ids (connection
 * ids, group names or user ids, each once) and the excluded connection ids.
 */
import type { SendTarget } from "../backplane.js";

/** The wire number of each {@link SendTarget} kind, and of `nodes` for control rows. */
export const TargetKind = { all: 0, connections: 1, groups: 2, users: 3, nodes: 4 } as const;
export type TargetKind = (typeof TargetKind)[keyof typeof TargetKind];

/** A send target as a reader needs it: the kind, the named ids and the excluded connection ids. */
export interface DecodedTarget {
  kind: TargetKind;
  ids: string[];
  excluded: string[];
}

/** A group membership as it travels with a connection that moves: the group, its seq, and whether in it. */
export interface HandedOverGroup {
  group: string;
  seq: number;
  member: boolean;
}

/** The named ids and the exclusions of a target, in wire form. */
export function targetParts(target: SendTarget): DecodedTarget {
  switch (target.kind) {
    case "all":
      return { kind: TargetKind.all, ids: [], excluded: strings(target.excludedConnectionIds ?? []) };
    case "connections":
      return { kind: TargetKind.connections, ids: strings(target.connectionIds), excluded: [] };
    case "groups":
      return {
        kind: TargetKind.groups,
        ids: strings(target.groups),
        excluded: strings(target.excludedConnectionIds ?? []),
      };
    case "users":
      return { kind: TargetKind.users, ids: strings(target.userIds), excluded: [] };
    default:
      throw new TypeError(`Unknown send target kind '${String((target as { kind: unknown }).kind)}'.`);
  }
}

function strings(values: readonly string[]): string[] {
  if (!Array.isArray(values) || !values.every((v) => typeof v === "string")) {
    throw new TypeError("Send target ids must be an array of strings.");
  }
  return values.length < 2 ? [...values] : [...new Set(values)];
}
