/** Why a server could not listen, in words that say what to do. */
export function listenFailure(err: unknown, host: string, port: number): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "EADDRINUSE")
    return `port ${port} on ${host} is already in use: stop what holds it, or choose another with --port.`;
  if (code === "EACCES")
    return `port ${port} on ${host} needs privileges this process lacks: choose a port above 1023 with --port.`;
  if (code === "EADDRNOTAVAIL")
    return `${host} is not an address of this machine: choose another with --host.`;
  return `could not listen on ${host}:${port}: ${err instanceof Error ? err.message : String(err)}`;
}
