/**
 * Asks `done` again and again, waiting 1, 2, 4 … up to 50 ms in between, until it says true or `timeoutMs`
 * has passed. For the rare waits on another node's progress that only the database can tell (a group
 * change or an arrival applied): nothing wakes the waiter, and the first answers usually come in a few ms.
 * @returns whether `done` said true in time.
 */
export async function pollUntil(done: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
    if (await done()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
