/**
 * Debian's redis-server, which the Redis tests start their own servers from (installed with apt-get when
 * missing and allowed; see system-programs.ts). Without it a test file skips, naming what is missing;
 * under CI it fails instead.
 */
import { findSystemProgram, type ProgramLookup } from "./system-programs.js";

export function findRedisServer(): Promise<ProgramLookup> {
  return findSystemProgram({
    name: "redis-server",
    path: "/usr/bin/redis-server",
    aptPackage: "redis-server",
  });
}
