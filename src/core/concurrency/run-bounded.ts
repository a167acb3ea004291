/** Map with at most `limit` calls in flight, reporting progress. */
export async function runBounded<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
  progress?: (done: number, total: number) => void,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
      progress?.(++done, items.length);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}
