/**
 * Runs `fn` over `items` with at most `limit` in flight, keeping input order in the result.
 * `shouldStart` is asked before each item; once it says no, the remaining items get `notStarted`.
 */
export const mapLimit = async <T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
  options: { shouldStart?: () => boolean; notStarted?: (item: T) => R } = {},
): Promise<R[]> => {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index] as T;
      if (options.shouldStart && options.notStarted && !options.shouldStart()) {
        results[index] = options.notStarted(item);
        continue;
      }
      results[index] = await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
};

/** Splits `items` into chunks of at most `size` (AWS batch limits: 10 services, 50 scalable targets…). */
export const chunk = <T>(items: readonly T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};
