/**
 * A time to live for stored messages and kept notifications, checked before anything is written, in
 * whole milliseconds (what Redis's PEXPIRE takes; PostgreSQL's interval loses nothing by it).
 */
export function checkedTtlMs(ttlMs: number): number {
  if (!(Number.isFinite(ttlMs) && ttlMs > 0)) throw new RangeError("ttlMs must be a positive number.");
  return Math.ceil(ttlMs);
}
