/**
 * Groups single writes into one transaction: items added within `maxDelayMs` (or until
 * `maxBatch` of them) are flushed together, and each caller gets its own item's result.
 * SQLite has one writer at a time; one transaction of 100 rows costs about what one row does.
 */
export class Batcher<T, R> {
  private items: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly flushFn: (items: T[]) => Promise<R[]>,
    private readonly opts: { maxBatch: number; maxDelayMs: number } = { maxBatch: 200, maxDelayMs: 5 },
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.items.push({ item, resolve, reject });
      if (this.items.length >= this.opts.maxBatch) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.opts.maxDelayMs);
    });
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.items;
    this.items = [];
    if (batch.length === 0) return;
    try {
      const results = await this.flushFn(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }
}
