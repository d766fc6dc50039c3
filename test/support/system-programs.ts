/**
 * Programs some tests drive that npm cannot install (Debian's `chromium`, `nginx`). A test file asks for one
 * with `findSystemProgram`. When it is missing and we run as root with apt-get, it is installed from Debian's
 * packages, once per file (concurrent files take turns through a lock). When it is still missing, the file
 * is skipped with a message naming what is missing — except under CI (`$CI` set), where a missing program is a
 * failure: CI must skip nothing, and `.ci/run` installs both before the tests.
 */
import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SystemProgram {
  /** The executable's name, also looked up on $PATH. */
  name: string;
  /** Where Debian's package puts it; looked at first. */
  path: string;
  /** The Debian package that provides it. */
  aptPackage: string;
}

/** A found program (`path`), or why it is missing (`missing`, for the skip message). */
export type ProgramLookup = { path: string; missing?: undefined } | { path?: undefined; missing: string };

/**
 * Finds `program`, installing it with apt-get when missing and allowed (root). Resolves with its path, or
 * with the reason it is missing; under CI a missing program rejects instead.
 */
export async function findSystemProgram(program: SystemProgram): Promise<ProgramLookup> {
  const found = (await locate(program)) ?? (await installWithApt(program));
  if (found) return { path: found };
  const missing =
    `${program.name} is not installed (looked for ${program.path} and on $PATH). ` +
    `Install Debian's package: apt-get install -y ${program.aptPackage}` +
    (isRoot() ? "." : " (the tests install it themselves when run as root).");
  if (process.env.CI) throw new Error(`${missing} CI must skip no test.`);
  console.warn(`Skipping: ${missing}`);
  return { missing };
}

async function locate(program: SystemProgram): Promise<string | undefined> {
  const candidates = [
    program.path,
    ...(process.env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, program.name)),
  ];
  for (const candidate of candidates) {
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * `apt-get update && apt-get install -y <package>` under a lock file, unless the program appeared while we
 * waited for the lock (another test file installed it). Logs apt's failure and resolves undefined.
 */
async function installWithApt(program: SystemProgram): Promise<string | undefined> {
  if (!isRoot() || !(await isExecutable("/usr/bin/apt-get")) || !(await isExecutable("/usr/bin/flock")))
    return undefined;
  const script = `test -x ${program.path} || { apt-get update && apt-get install -y ${program.aptPackage}; }`;
  console.warn(`${program.name} is missing; installing Debian's ${program.aptPackage} (apt-get, as root)…`);
  try {
    await run("/usr/bin/flock", [join(tmpdir(), "switchboard-tests-apt.lock"), "sh", "-c", script], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      timeout: 10 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const output = err as { stderr?: string; message: string };
    console.warn(
      `Installing ${program.aptPackage} failed: ${(output.stderr || output.message).slice(-2000)}`,
    );
    return undefined;
  }
  return locate(program);
}
