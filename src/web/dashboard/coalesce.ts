/**
 * A read many open dashboards ask for at once: at most one computation per key at a time, and its
 * result serves every caller within `maxAgeMs` (the page polls every 2 s; fifty open dashboards
 * cost what one does). Keys are few (a page of dead letters, the dashboard data); `maxKeys` bounds them.
 */
export function coalesce<K, V>(compute: (key: K) => Promise<V>, maxAgeMs = 1000, maxKeys = 100): (key: K) => Promise<V> {
  const done = new Map<K, { at: number; value: V }>();
  const inflight = new Map<K, Promise<V>>();
  return (key) => {
    const hit = done.get(key);
    if (hit && Date.now() - hit.at < maxAgeMs) return Promise.resolve(hit.value);
    let p = inflight.get(key);
    if (!p) {
      p = compute(key)
        .then((value) => {
          if (done.size >= maxKeys) done.clear();
          done.set(key, { at: Date.now(), value });
          return value;
        })
        .finally(() => inflight.delete(key));
      inflight.set(key, p);
    }
    return p;
  };
}
