import { describe, expect, it } from 'vitest';
import { onDemand } from '#shared/on-demand.ts';

describe('onDemand', () => {
  it('makes the value once, for calls at once and later, and tries again after a failure', async () => {
    // Prepare
    let made = 0;
    let fail = true;
    const value = onDemand(async () => {
      made += 1;
      await new Promise((resolve) => setImmediate(resolve));
      if (fail) throw new Error(`attempt ${made} failed`);
      return { made };
    });

    // Act / Assess: two calls at once share the failed attempt; the next call tries again
    const first = await Promise.allSettled([value(), value()]);
    expect(first.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(made).toBe(1);
    fail = false;
    const [a, b] = await Promise.all([value(), value()]);
    expect(a).toBe(b);
    expect(await value()).toBe(a);
    expect(made).toBe(2);
  });
});
