/**
 * hub → name → connection ids: how the local index (local-index.ts) holds groups in memory. Empty sets and maps
 * are removed, so the index holds only what is in use.
 */
export type NameIndex = Map<string, Map<string, Set<string>>>;

export function indexAdd(index: NameIndex, hub: string, name: string, id: string): void {
  let byName = index.get(hub);
  if (!byName) index.set(hub, (byName = new Map()));
  let ids = byName.get(name);
  if (!ids) byName.set(name, (ids = new Set()));
  ids.add(id);
}

export function indexRemove(index: NameIndex, hub: string, name: string, id: string): void {
  const byName = index.get(hub);
  const ids = byName?.get(name);
  if (!byName || !ids) return;
  ids.delete(id);
  if (ids.size === 0) byName.delete(name);
  if (byName.size === 0) index.delete(hub);
}
