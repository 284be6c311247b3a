/**
 * The test proxy's pinned timestamps (test/support/proxy.ts): moto stamps creation times with the real
 * clock, and tests on fixed clocks pin them so that the hour the suite runs at cannot change a result.
 */
import { describe, expect, it } from 'vitest';
import { CREATION_TIMES_LONG_AGO, pinTimesIn } from '#test/support/proxy.ts';

describe('pinTimesIn', () => {
  const pin = pinTimesIn(CREATION_TIMES_LONG_AGO);

  it('replaces every named XML element, and nothing else', () => {
    // Prepare
    const body =
      '<DBInstance><InstanceCreateTime>2026-11-30T18:55:01.123Z</InstanceCreateTime><TagList><Tag>' +
      '<Key>nightshift:stopped</Key><Value>at=2026-11-30T18:55:01Z</Value></Tag></TagList></DBInstance>' +
      '<DBCluster><ClusterCreateTime>2026-11-30T18:55:02Z</ClusterCreateTime></DBCluster>' +
      '<member><CreatedTime>2026-11-30T18:55:03Z</CreatedTime><LaunchTime>2026-11-30T18:55:04Z</LaunchTime></member>';

    // Act
    const pinned = pin(body);

    // Assess
    expect(pinned).toBe(
      '<DBInstance><InstanceCreateTime>2026-01-05T09:00:00Z</InstanceCreateTime><TagList><Tag>' +
        '<Key>nightshift:stopped</Key><Value>at=2026-11-30T18:55:01Z</Value></Tag></TagList></DBInstance>' +
        '<DBCluster><ClusterCreateTime>2026-01-05T09:00:00Z</ClusterCreateTime></DBCluster>' +
        '<member><CreatedTime>2026-01-05T09:00:00Z</CreatedTime><LaunchTime>2026-11-30T18:55:04Z</LaunchTime></member>',
    );
  });

  it('replaces JSON keys in the value shape they had: an ISO string, or epoch seconds', () => {
    // Act
    const pinned = JSON.parse(
      pin(JSON.stringify({ a: { CreatedTime: 1796065000.5 }, b: [{ CreatedTime: '2026-11-30T18:55:00Z' }] })),
    );

    // Assess
    expect(pinned).toEqual({ a: { CreatedTime: 1767603600 }, b: [{ CreatedTime: '2026-01-05T09:00:00Z' }] });
  });
});
