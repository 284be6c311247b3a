import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { parseInput } from '#shared/input.ts';
import type { Schema } from '#shared/zod.ts';

const SCHEMAS: Record<string, Schema> = { 'ecs-scheduler': SchedulerInput };

const samples = Object.keys(SCHEMAS).flatMap((fn) =>
  readdirSync(join('events', fn, 'samples')).map((file) => ({ fn, file })),
);

describe('event contracts', () => {
  it('has a schema and samples for every function', () => {
    const functions = readdirSync('functions').filter((f) => existsSync(join('functions', f, 'handler.ts')));
    expect(Object.keys(SCHEMAS).sort()).toEqual(functions.sort());
    for (const fn of functions) expect(samples.filter((s) => s.fn === fn).length).toBeGreaterThan(1);
  });

  it.each(samples)('parses $fn sample $file under its schema', ({ fn, file }) => {
    const event = JSON.parse(readFileSync(join('events', fn, 'samples', file), 'utf8'));
    expect(() => parseInput(SCHEMAS[fn] as Schema, event)).not.toThrow();
  });
});
