/**
 * snapshot-tags at the scale of a real account, against AWS simulated with aws-sdk-client-mock at AWS's
 * own page sizes: every page of every read followed (RDS Marker, EC2 NextToken, pages fuller or emptier
 * than asked), and the report of a sweep over tens of thousands of snapshots measured against Lambda's
 * 6 MB synchronous response.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  AddTagsToResourceCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  CreateTagsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { handler, run, type Deps } from '#functions/snapshot-tags/handler.ts';
import { MAX_REPORT_BYTES, UNCHANGED_LISTED, type Report } from '#shared/report.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import { lambdaContext, runContext } from '#test/support/context.ts';

const rds = mockClient(RDSClient);
const ec2 = mockClient(EC2Client);

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const hex = (n: number, width = 17) => n.toString(16).padStart(width, '0');
const snapId = (n: number) => `snap-${hex(n)}`;
const volId = (n: number) => `vol-${hex(n)}`;
const ebsArn = (n: number) => `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/${snapId(n)}`;
type Tag = { Key: string; Value: string };
const tags = (t: Record<string, string>): Tag[] => Object.entries(t).map(([Key, Value]) => ({ Key, Value }));

const deps = (): Deps => ({
  clients: { rds: new RDSClient({ region: REGION }), ec2: new EC2Client({ region: REGION }) },
  config: { TAG_KEYS: [], EXCLUDE_TAG_KEYS: [], DRY_RUN: false },
});
const bytes = (report: unknown) => Buffer.byteLength(JSON.stringify(report), 'utf8');

/**
 * Answers a paginated call like AWS: at most `asked` items (checked against the API's limits), and at
 * most `fill` of them, which AWS may return fewer of; a token whenever more follow. `empty` pages (by
 * index) come back with no items and a token, as EC2 does with filters.
 */
const pager = <T>(
  items: readonly T[],
  page: { min: number; max: number; fill?: number; empty?: ReadonlySet<number> },
) => {
  const served: number[] = [];
  const answer = (asked: number | undefined, token: string | undefined) => {
    if (asked !== undefined && (asked < page.min || asked > page.max)) {
      throw Object.assign(new Error(`page size ${asked} outside ${page.min}-${page.max}`), {
        name: 'InvalidParameterValue',
      });
    }
    const [offset, index] = token ? token.split('.').map(Number) : [0, 0];
    const at = offset ?? 0;
    const n = index ?? 0;
    const size = page.empty?.has(n) ? 0 : Math.min(asked ?? page.max, page.fill ?? page.max);
    const slice = items.slice(at, at + size);
    served.push(slice.length);
    const next = at + size < items.length ? `${at + size}.${n + 1}` : undefined;
    return { slice, next };
  };
  return { answer, served };
};

interface Estate {
  dbSnapshots: { id: string; db: string; tags: Tag[] }[];
  clusterSnapshots: { id: string; cluster: string; tags: Tag[] }[];
  dbs: { id: string; tags: Tag[] }[];
  clusters: { id: string; tags: Tag[] }[];
  ebs: { n: number; volume: number; tags: Tag[] }[];
  /** Volume number → tags; a volume not in here was deleted. */
  volumes: Map<number, Tag[]>;
}

/** Installs AWS's paginated answers for `estate`; `fill` is how full AWS fills the pages it returns. */
const simulate = (estate: Estate, fill?: number) => {
  const rdsPage = { min: 20, max: 100, ...(fill && { fill }) };
  const pages = {
    dbSnapshots: pager(estate.dbSnapshots, rdsPage),
    clusterSnapshots: pager(estate.clusterSnapshots, rdsPage),
    dbs: pager(estate.dbs, rdsPage),
    clusters: pager(estate.clusters, rdsPage),
    // Every fifth page of snapshots comes back empty, with a token.
    ebs: pager(estate.ebs, {
      min: 5,
      max: 1000,
      ...(fill && { fill: fill * 10 }),
      empty: new Set([1, 4, 9, 14, 19, 24, 29, 34, 39]),
    }),
  };
  const volumePages: number[] = [];
  rds.on(DescribeDBSnapshotsCommand).callsFake((input: { MaxRecords?: number; Marker?: string }) => {
    const { slice, next } = pages.dbSnapshots.answer(input.MaxRecords, input.Marker);
    return {
      DBSnapshots: slice.map((s) => ({
        DBSnapshotArn: `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${s.id}`,
        DBSnapshotIdentifier: s.id,
        DBInstanceIdentifier: s.db,
        Status: 'available',
        TagList: s.tags,
      })),
      ...(next && { Marker: next }),
    };
  });
  rds.on(DescribeDBClusterSnapshotsCommand).callsFake((input: { MaxRecords?: number; Marker?: string }) => {
    const { slice, next } = pages.clusterSnapshots.answer(input.MaxRecords, input.Marker);
    return {
      DBClusterSnapshots: slice.map((s) => ({
        DBClusterSnapshotArn: `arn:aws:rds:${REGION}:${ACCOUNT}:cluster-snapshot:${s.id}`,
        DBClusterSnapshotIdentifier: s.id,
        DBClusterIdentifier: s.cluster,
        Status: 'available',
        TagList: s.tags,
      })),
      ...(next && { Marker: next }),
    };
  });
  rds.on(DescribeDBInstancesCommand).callsFake((input: { MaxRecords?: number; Marker?: string }) => {
    const { slice, next } = pages.dbs.answer(input.MaxRecords, input.Marker);
    return {
      DBInstances: slice.map((d) => ({ DBInstanceIdentifier: d.id, TagList: d.tags })),
      ...(next && { Marker: next }),
    };
  });
  rds.on(DescribeDBClustersCommand).callsFake((input: { MaxRecords?: number; Marker?: string }) => {
    const { slice, next } = pages.clusters.answer(input.MaxRecords, input.Marker);
    return {
      DBClusters: slice.map((c) => ({ DBClusterIdentifier: c.id, TagList: c.tags })),
      ...(next && { Marker: next }),
    };
  });
  ec2.on(DescribeSnapshotsCommand).callsFake((input: { MaxResults?: number; NextToken?: string }) => {
    const { slice, next } = pages.ebs.answer(input.MaxResults, input.NextToken);
    return {
      Snapshots: slice.map((s) => ({
        SnapshotId: snapId(s.n),
        VolumeId: volId(s.volume),
        OwnerId: ACCOUNT,
        State: 'completed',
        Tags: s.tags,
      })),
      ...(next && { NextToken: next }),
    };
  });
  // A filter of up to 200 volume ids, answered 150 to a page at most: a second page behind a token.
  ec2
    .on(DescribeVolumesCommand)
    .callsFake((input: { Filters: { Values: string[] }[]; MaxResults?: number; NextToken?: string }) => {
      const values = input.Filters[0]?.Values ?? [];
      if (values.length > 200)
        throw Object.assign(new Error('too many filter values'), { name: 'FilterLimitExceeded' });
      const found = values.flatMap((id) => {
        const n = parseInt(id.slice(4), 16);
        const t = estate.volumes.get(n);
        return t ? [{ VolumeId: id, Tags: t }] : [];
      });
      const { slice, next } = pager(found, { min: 5, max: 500, fill: 150 }).answer(
        input.MaxResults,
        input.NextToken,
      );
      volumePages.push(values.length);
      return { Volumes: slice, ...(next && { NextToken: next }) };
    });
  return { pages, volumePages };
};

const TEAMS = 40;

/**
 * An account: `dbCount` DB instances with `perDb` snapshots each, 120 Aurora clusters with one snapshot
 * each, `ebsCount` EBS snapshots over ebsCount / 5 volumes (tagged team and Name, 40 teams), every tenth
 * volume deleted. `tagged(i)`: whether snapshot i already carries its source's tags.
 */
const account = (o: {
  dbCount: number;
  perDb: number;
  ebsCount: number;
  tagged: (i: number) => boolean;
}): Estate => {
  const teamOf = (n: number) => ({ team: `team-${n % TEAMS}`, 'cost-center': `cc-${(n % TEAMS) * 7}` });
  const dbs = Array.from({ length: o.dbCount }, (_, d) => ({ id: `orders-${d}`, tags: tags(teamOf(d)) }));
  const dbSnapshots = dbs.flatMap((db, d) =>
    Array.from({ length: o.perDb }, (_, k) => ({
      id: `rds:${db.id}-2026-11-${String(1 + k).padStart(2, '0')}-03-24`,
      db: db.id,
      tags: o.tagged(d * o.perDb + k) ? tags(teamOf(d)) : [],
    })),
  );
  const clusters = Array.from({ length: 120 }, (_, c) => ({ id: `billing-${c}`, tags: tags(teamOf(c)) }));
  const clusterSnapshots = clusters.map((c, i) => ({
    id: `${c.id}-before-upgrade`,
    cluster: c.id,
    tags: o.tagged(i) ? tags(teamOf(i)) : [],
  }));
  const volumes = new Map<number, Tag[]>();
  const volumeCount = Math.ceil(o.ebsCount / 5);
  for (let v = 0; v < volumeCount; v += 1) {
    if (v % 10 !== 9) volumes.set(v, tags({ ...teamOf(v), Name: `data-${v % TEAMS}` }));
  }
  const ebs = Array.from({ length: o.ebsCount }, (_, i) => {
    const volume = i % volumeCount;
    return { n: 0xa1b2c3d4e0000 + i, volume, tags: o.tagged(i) ? (volumes.get(volume) ?? []) : [] };
  });
  return { dbSnapshots, clusterSnapshots, dbs, clusters, ebs, volumes };
};

describe('snapshot-tags at scale (aws-sdk-client-mock)', () => {
  beforeEach(() => {
    rds.reset();
    ec2.reset();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each([10, 50, 100])(
    'follows every page of every read when AWS fills its pages with %i records',
    async (fill) => {
      // Prepare: every listing longer than one page, whatever the fill
      const estate = account({ dbCount: 130, perDb: 2, ebsCount: 2600, tagged: () => false });
      const { pages, volumePages } = simulate(estate, fill);

      // Act
      const report = await run({ action: 'sweep', dryRun: true }, runContext(), deps());

      // Assess: every snapshot read and planned from a source found on some page
      const total = estate.dbSnapshots.length + estate.clusterSnapshots.length + estate.ebs.length;
      const orphans = estate.ebs.filter((s) => !estate.volumes.has(s.volume)).length;
      expect(report.resources).toHaveLength(total);
      expect(report.summary).toMatchObject({ planned: total - orphans, skipped: orphans, failed: 0 });
      // every page served, each as full as AWS chose, the API's maximum asked for
      expect(pages.dbSnapshots.served.reduce((a, b) => a + b, 0)).toBe(260);
      expect(pages.dbSnapshots.served.length).toBe(Math.ceil(260 / fill));
      expect(pages.dbs.served.length).toBe(Math.ceil(130 / fill));
      expect(pages.clusters.served.length).toBe(Math.ceil(120 / fill));
      expect(pages.ebs.served.filter((n) => n === 0).length).toBeGreaterThan(0);
      expect(pages.ebs.served.reduce((a, b) => a + b, 0)).toBe(2600);
      expect(rds.commandCalls(DescribeDBSnapshotsCommand).map((c) => c.args[0].input.MaxRecords)).toEqual(
        pages.dbSnapshots.served.map(() => 100),
      );
      expect(
        new Set(ec2.commandCalls(DescribeSnapshotsCommand).map((c) => c.args[0].input.MaxResults)),
      ).toEqual(new Set([1000]));
      // 520 volumes: 200 + 200 + 120 ids to a filter, each answered in two pages
      expect([...volumePages].sort((a, b) => b - a)).toEqual([200, 200, 200, 200, 120]);
      expect(ec2.commandCalls(DescribeVolumesCommand).every((c) => c.args[0].input.MaxResults === 500)).toBe(
        true,
      );
    },
  );

  it('treats the volume AWS gives copied snapshots (vol-ffffffff) as no source, without looking it up', async () => {
    simulate({ dbSnapshots: [], clusterSnapshots: [], dbs: [], clusters: [], ebs: [], volumes: new Map() });
    ec2.on(DescribeSnapshotsCommand).resolves({
      Snapshots: [{ SnapshotId: snapId(1), VolumeId: 'vol-ffffffff', OwnerId: ACCOUNT, State: 'completed' }],
    });

    const report = await run({ action: 'sweep', dryRun: true }, runContext(), deps());

    expect(report.resources).toEqual([
      {
        arn: ebsArn(1),
        type: 'ebs-snapshot',
        outcome: 'skipped',
        detail: 'the snapshot names no source volume (copied, or registered from an AMI); no tags to copy',
      },
    ]);
    expect(ec2.commandCalls(DescribeVolumesCommand)).toHaveLength(0);
  });

  describe('the report of a sweep over tens of thousands of snapshots fits a synchronous invoke', () => {
    const invoke = async (event: unknown) => {
      vi.stubEnv('AWS_REGION', REGION);
      return (await handler(event, lambdaContext('snapshot-tags'))) as Report;
    };
    /** Every snapshot id the report names, in a row's ARN or in a folded row's list. */
    const named = (report: Report) => {
      const text = report.resources.map((r) => `${r.arn} ${r.detail}`).join(' ');
      return new Set(
        text.match(/snap-[0-9a-f]{17}|rds:orders-\d+-2026-11-\d\d-03-24|billing-\d+-before-upgrade/g),
      );
    };

    it('counts the unchanged snapshots of a daily sweep and lists every change: well under 6 MB', async () => {
      // Prepare: 45,000 EBS and 3,120 RDS snapshots; all but the newest 500 of each kind already tagged
      const estate = account({ dbCount: 300, perDb: 10, ebsCount: 45_000, tagged: (i) => i % 90 !== 0 });
      simulate(estate);
      ec2.on(CreateTagsCommand).resolves({});
      rds.on(AddTagsToResourceCommand).resolves({});

      // Act
      const report = await invoke({ action: 'sweep' });

      // Assess
      const size = bytes(report);
      expect(size).toBeLessThan(1_500_000);
      expect(report.summary.unchanged).toBeGreaterThan(UNCHANGED_LISTED);
      expect(report.omitted).toEqual({ unchanged: report.summary.unchanged });
      expect(report.resources.filter((r) => r.outcome === 'changed')).toHaveLength(report.summary.changed);
      expect(report.resources.filter((r) => r.outcome === 'skipped')).toHaveLength(report.summary.skipped);
      // rows stay short: an EBS change is its ARN and a one-line detail
      const changedEbs = report.resources.find((r) => r.outcome === 'changed' && r.type === 'ebs-snapshot');
      expect(changedEbs?.detail).toMatch(
        /^added 3 tags from volume vol-[0-9a-f]{17}: Name, cost-center, team$/,
      );
      expect(bytes(changedEbs)).toBeLessThan(250);
    });

    it.each([false, true])(
      'still lists every snapshot of a first sweep that tags 45,000 of them (dry run: %s)',
      async (dryRun) => {
        // Prepare: nothing tagged yet
        const estate = account({ dbCount: 300, perDb: 10, ebsCount: 45_000, tagged: () => false });
        simulate(estate);
        ec2.on(CreateTagsCommand).resolves({});
        rds.on(AddTagsToResourceCommand).resolves({});

        // Act
        const report = await invoke({ action: 'sweep', dryRun });

        // Assess: one row per snapshot would be ~9 MB; folded, it fits, and names every snapshot
        const perSnapshot = report.summary.planned + report.summary.changed;
        expect(perSnapshot).toBeGreaterThan(40_000);
        expect(bytes(report)).toBeLessThan(MAX_REPORT_BYTES);
        expect(bytes(report)).toBeLessThan(2_500_000);
        const every = [
          ...estate.ebs.map((s) => snapId(s.n)),
          ...estate.dbSnapshots.map((s) => s.id),
          ...estate.clusterSnapshots.map((s) => s.id),
        ];
        const seen = named(report);
        expect(every.filter((id) => !seen.has(id))).toEqual([]);
        expect(report.resources.filter((r) => r.outcome === 'skipped')).toHaveLength(report.summary.skipped);
        // folded a CreateTags call's worth to a row, so each row stays readable (and fits a summary mail)
        const folded = report.resources.filter((r) => r.arn.endsWith(' EBS snapshots'));
        expect(folded.length).toBeGreaterThanOrEqual(41);
        expect(Math.max(...folded.map((r) => bytes(r)))).toBeLessThan(30_000);
        expect(folded[0]?.arn).toBe('1000 EBS snapshots');
        expect(folded[0]?.detail).toMatch(
          new RegExp(
            `^${dryRun ? 'add' : 'added'} Name, cost-center, team, each from its own source, to: snap-`,
          ),
        );
        if (dryRun) expect(report.planDigest).toMatch(PLAN_DIGEST);
        const orphans = estate.ebs.filter((s) => !estate.volumes.has(s.volume)).length;
        expect(report.summary).toMatchObject({
          [dryRun ? 'planned' : 'changed']: every.length - orphans,
          skipped: orphans,
        });
        if (!dryRun) {
          const tagged = ec2.commandCalls(CreateTagsCommand).flatMap((c) => c.args[0].input.Resources ?? []);
          expect(new Set(tagged).size).toBe(estate.ebs.filter((s) => estate.volumes.has(s.volume)).length);
          expect(
            ec2
              .commandCalls(CreateTagsCommand)
              .every((c) => (c.args[0].input.Resources ?? []).length <= 1000),
          ).toBe(true);
        }
      },
    );

    it('says why an apply of a changed plan of 45,000 snapshots changed nothing, in a report that fits', async () => {
      // Prepare: the person confirmed another plan than the one the apply finds
      const estate = account({ dbCount: 300, perDb: 10, ebsCount: 45_000, tagged: () => false });
      simulate(estate);

      // Act
      const report = await invoke({ action: 'sweep', planDigest: 'f'.repeat(64) });

      // Assess: nothing sent, every refused change shown with the reason
      expect(ec2.commandCalls(CreateTagsCommand)).toHaveLength(0);
      expect(rds.commandCalls(AddTagsToResourceCommand)).toHaveLength(0);
      expect(report.summary.skipped).toBeGreaterThan(40_000);
      expect(report.omitted).toBeUndefined();
      expect(bytes(report)).toBeLessThan(2_500_000);
      const folded = report.resources.find((r) => r.arn.endsWith(' EBS snapshots'));
      expect(folded).toMatchObject({ outcome: 'skipped', type: 'ebs-snapshot' });
      expect(folded?.detail).toMatch(
        /^the plan changed since it was confirmed .*; nothing changed — look at the new plan and confirm again \(the new plan: add Name, cost-center, team, each from its own source, to: snap-[0-9a-f]{17}, /,
      );
      expect(named(report).size).toBe(report.summary.skipped);
    });
  });
});
