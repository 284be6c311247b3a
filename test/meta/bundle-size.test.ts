/**
 * What a cold start of each built function parses: dist/<fn>/index.mjs and every chunk it imports
 * statically (scripts/bundle-graph.ts). Issue 12's goal is 400 KiB. A function still above it has a
 * ceiling here, its size when the ceiling was set: it may not grow, and once it meets the goal its
 * ceiling must go. Sizes, not times: `npm run measure` times the cold imports. Run after `npm run build`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleGraph, functionNames } from '#scripts/bundle-graph.ts';

const GOAL_KIB = 400;

/**
 * Functions above the goal still (KiB, entry + static chunks), each with its size when the ceiling was
 * set. None since Powertools left the bundles (shared/log.ts, shared/emf.ts).
 */
const CEILING_KIB: Record<string, number> = {};

const kib = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;

describe('function bundles: what a cold start loads', () => {
  it.each(functionNames())('%s: entry + static chunks within the goal (or its ceiling)', (fn) => {
    // Prepare
    expect(existsSync(join('dist', fn, 'index.mjs')), `dist/${fn}/index.mjs missing: run npm run build`).toBe(
      true,
    );

    // Act
    const cold = kib(bundleGraph('dist', fn).coldStart.bytes);

    // Assess
    const ceiling = CEILING_KIB[fn];
    if (ceiling === undefined)
      expect(cold, `dist/${fn}: entry + static chunks, KiB`).toBeLessThanOrEqual(GOAL_KIB);
    else {
      expect(
        cold,
        `dist/${fn}: entry + static chunks, KiB (ceiling while above ${GOAL_KIB})`,
      ).toBeLessThanOrEqual(ceiling);
      expect(cold, `dist/${fn} meets the ${GOAL_KIB} KiB goal now: remove its ceiling`).toBeGreaterThan(
        GOAL_KIB,
      );
    }
  });

  it.each(functionNames())(
    '%s: leaves the SNS client to the runs that publish a summary (an on-demand chunk)',
    (fn) => {
      const graph = bundleGraph('dist', fn);
      expect(graph.onDemand.map((c) => c.name)).toContain('sns');
      expect(graph.coldStart.files.filter((f) => /\/sns-[A-Z0-9]+\.mjs$/.test(f))).toEqual([]);
    },
  );

  it.each(functionNames())(
    '%s: leaves the SDK code of its on-demand paths out of the cold start (scripts/direct-sdk-imports.ts)',
    (fn) => {
      // The REST JSON protocol serves only clients loaded on demand (the fleet's Lambda client, the
      // scheduled-task warning's Scheduler client); esbuild put it in the cold start, through the SDK's
      // barrel modules, before the build pointed the SDK's imports past them.
      const graph = bundleGraph('dist', fn);
      const holding = (files: string[]) =>
        files.filter((f) => readFileSync(f, 'utf8').includes('"aws.protocols#restJson1"'));
      expect(holding(graph.coldStart.files.map((f) => join('dist', f)))).toEqual([]);
      expect(
        holding(readdirSync(join('dist', fn, 'chunks')).map((c) => join('dist', fn, 'chunks', c))),
      ).not.toEqual([]);
    },
  );

  it('names a ceiling only for functions that exist', () => {
    expect(functionNames()).toEqual(expect.arrayContaining(Object.keys(CEILING_KIB)));
  });
});
