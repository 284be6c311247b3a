import { describe, expect, it } from 'vitest';
import { databaseReady, environmentOf, groupAtRest, groupReady, serviceAtRest } from '#shared/environment.ts';

describe('databaseReady', () => {
  it.each([
    ['available', true],
    ['backing-up', true],
    ['storage-optimization', true],
    ['modifying', true],
    ['starting', false],
    ['stopped', false],
    ['rebooting', false],
    ['upgrading', false],
    ['maintenance', false],
    ['incompatible-network', false],
    ['renaming', false],
    ['something-new', false],
  ])('an instance that is %s is ready: %s', (status, ready) => {
    expect(databaseReady({ id: 'shop-db', kind: 'instance', status })).toBe(ready);
  });

  it('needs an Aurora cluster and its writer both serving', () => {
    const cluster = (status: string, writerStatus?: string) =>
      databaseReady({ id: 'reports', kind: 'cluster', status, ...(writerStatus && { writerStatus }) });

    expect(cluster('available', 'available')).toBe(true);
    expect(cluster('backing-up', 'available')).toBe(true);
    expect(cluster('available', 'starting')).toBe(false);
    expect(cluster('starting', 'available')).toBe(false);
    expect(cluster('available')).toBe(false);
  });
});

describe('environment membership and rest', () => {
  it('takes the first tag set that names an environment, ignoring an empty value', () => {
    expect(environmentOf({ 'nightshift:environment': '' }, { 'nightshift:environment': 'shop' })).toBe(
      'shop',
    );
    expect(environmentOf({}, {})).toBeUndefined();
  });

  it('counts a service at rest only with desiredCount 0 and no task, a group only at 0/0/0 with no instance', () => {
    expect(serviceAtRest({ name: 'shop/web', desiredCount: 0, tasks: 0 })).toBe(true);
    expect(serviceAtRest({ name: 'shop/web', desiredCount: 0, tasks: 1 })).toBe(false);
    expect(groupAtRest({ name: 'g', min: 0, desired: 0, max: 0, instances: 0 })).toBe(true);
    expect(groupAtRest({ name: 'g', min: 0, desired: 0, max: 0, instances: 1 })).toBe(false);
    expect(groupReady({ desired: 2, inService: 1 })).toBe(false);
    expect(groupReady({ desired: 2, inService: 2 })).toBe(true);
  });
});
