/**
 * `npm run demo` keeps working: the built ecs-scheduler bundle against a private moto, with the lease
 * table created there (the bundle needs LEASE_TABLE to change anything).
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { motoTestsEnabled } from '#test/support/moto.ts';

describe.runIf(motoTestsEnabled())('the demo', () => {
  it('stops and starts the sample estate with the lease table, and restores it exactly', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 110_000,
    });

    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('lease table nightshift-demo-leases');
    expect(run.stdout).toContain('stop: 4 changed, 0 planned, 0 unchanged, 0 skipped, 0 failed');
    // A start while another run holds the cluster changes nothing there.
    expect(run.stdout).toContain('a start while another run holds the cluster: refused, nothing changes');
    expect(run.stdout).toMatch(
      /another run holds the lease on it: ecs-scheduler run 7c1d9e20 \(local:ops@laptop\)/,
    );
    expect(run.stdout).toContain(
      'restored exactly: every service, scaling target and group is back as it was.',
    );
  });
});
