/** Settles as `work` does, or rejects once `ms` have passed first (the timer is cleared either way). */
export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Resolves once `work` settles or `ms` have passed, whichever comes first: a close that must not hang. */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  await withDeadline(work, ms).catch(() => undefined);
}
