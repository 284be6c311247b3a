/**
 * `nightshift status`: what nightshift holds right now, read from the resources themselves with the
 * caller's credentials — parked services and groups (and what they come back to), rotations in
 * progress, recent restarts, snapshot copies in flight, and the stage's leases and carried-over work.
 *
 * Every list is read to its last page (page sizes below are the APIs' maximums, so an estate of
 * thousands of resources takes as few calls as it can). Unlike the functions, status has no Lambda
 * deadline: it reads everything.
 */
import { DescribeServicesCommand, paginateListClusters, paginateListServices } from '@aws-sdk/client-ecs';
import { paginateDescribeAutoScalingGroups } from '@aws-sdk/client-auto-scaling';
import { paginateDescribeInstances } from '@aws-sdk/client-ec2';
import { paginateScan } from '@aws-sdk/client-dynamodb';
import Table from 'cli-table3';
import { ecsClient } from '#shared/aws/ecs.ts';
import { autoScalingClient } from '#shared/aws/autoscaling.ts';
import { ec2Client } from '#shared/aws/ec2.ts';
import { rdsClient } from '#shared/aws/rds.ts';
import { dynamoDbClient } from '#shared/aws/dynamodb.ts';
import { formatAge } from '#shared/duration.ts';
import { chunk } from '#shared/concurrency.ts';
import { tagMap, tagMapUpper } from '#shared/tags.ts';
import {
  decodeGroup,
  decodeService,
  describeSuspension,
  SAVED_STATE_TAG,
} from '#functions/ecs-scheduler/saved.ts';
import { decodeRotation } from '#functions/instance-rotation/plan.ts';
import { ROTATION_TAG } from '#functions/instance-rotation/inventory.ts';
import { decodeLastRestart, LAST_RESTART_TAG } from '#functions/ssm-restart/cooldown.ts';
import { listSnapshots } from '#functions/rds-snapshot-copy/inventory.ts';

export interface StatusRow {
  resource: string;
  detail: string;
}

export interface Status {
  parked: StatusRow[];
  rotations: StatusRow[];
  restarts: StatusRow[];
  copies: StatusRow[];
  /** Leases held now in the stage's lease table: who is acting on what. */
  leases: StatusRow[];
  /** What the last run of a function and action left undone, which its next run starts with. */
  carriedOver: StatusRow[];
  notes: string[];
}

export interface StatusOptions {
  /** Target regions of snapshot copies. */
  copyRegions: string[];
  /** The stage's lease table (nightshift-<stage>-leases). */
  leaseTable: string;
}

const RECENT_MS = 24 * 3_600_000;
const IN_FLIGHT = new Set(['pending', 'copying', 'creating']);

const readable = <T>(decode: (text: string) => T, text: string): T | string => {
  try {
    return decode(text);
  } catch (error) {
    return `unreadable: ${(error as Error).message}`;
  }
};

const ecsRows = async (now: Date, parked: StatusRow[], restarts: StatusRow[]) => {
  const ecs = ecsClient();
  // ListClusters and ListServices return at most 100 per page; DescribeServices takes at most 10 services.
  for await (const clusters of paginateListClusters({ client: ecs }, { maxResults: 100 })) {
    for (const cluster of clusters.clusterArns ?? []) {
      const arns: string[] = [];
      for await (const page of paginateListServices({ client: ecs }, { cluster, maxResults: 100 })) {
        arns.push(...(page.serviceArns ?? []));
      }
      for (const batch of chunk(arns, 10)) {
        const out = await ecs.send(
          new DescribeServicesCommand({ cluster, services: batch, include: ['TAGS'] }),
        );
        for (const s of out.services ?? []) {
          const tags = tagMap(s.tags);
          const name = `service ${cluster.split('/').pop()}/${s.serviceName}`;
          const stopped = tags[SAVED_STATE_TAG];
          if (stopped !== undefined) {
            const saved = readable(decodeService, stopped);
            parked.push({
              resource: name,
              detail:
                typeof saved === 'string'
                  ? saved
                  : `stopped at ${saved.at}; comes back to desiredCount ${saved.desired}` +
                    (saved.scaling
                      ? `, scaling min ${saved.scaling.min} max ${saved.scaling.max} (${describeSuspension(saved.scaling.suspended)})`
                      : ''),
            });
          }
          const restarted = tags[LAST_RESTART_TAG];
          if (restarted !== undefined) {
            const last = readable(decodeLastRestart, restarted);
            if (typeof last === 'string' || now.getTime() - last.at.getTime() < RECENT_MS) {
              restarts.push({
                resource: name,
                detail:
                  typeof last === 'string' ? last : `${last.what} at ${last.at.toISOString()} (${last.via})`,
              });
            }
          }
        }
      }
    }
  }
};

const groupRows = async (parked: StatusRow[], rotations: StatusRow[]) => {
  // DescribeAutoScalingGroups returns 50 groups per page by default, 100 at most.
  const pages = paginateDescribeAutoScalingGroups({ client: autoScalingClient() }, { MaxRecords: 100 });
  for await (const page of pages) {
    for (const g of page.AutoScalingGroups ?? []) {
      const tags = tagMapUpper(g.Tags);
      const name = `group ${g.AutoScalingGroupName}`;
      const size = `min ${g.MinSize} desired ${g.DesiredCapacity} max ${g.MaxSize}`;
      if (tags[SAVED_STATE_TAG] !== undefined) {
        const saved = readable(decodeGroup, tags[SAVED_STATE_TAG]);
        parked.push({
          resource: name,
          detail:
            typeof saved === 'string'
              ? saved
              : `parked at ${saved.at} (now ${size}); comes back to min ${saved.min} desired ${saved.desired} max ${saved.max}`,
        });
      }
      if (tags[ROTATION_TAG] !== undefined) {
        const r = readable(decodeRotation, tags[ROTATION_TAG]);
        const inService = (g.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length;
        rotations.push({
          resource: name,
          detail:
            typeof r === 'string'
              ? r
              : `replacing ${r.instance} (${r.phase} since ${r.at}); ${inService} in service, ${size}; desired returns to ${r.desired}`,
        });
      }
    }
  }
};

const instanceRows = async (now: Date, restarts: StatusRow[]) => {
  // DescribeInstances returns at most 1,000 per page (MaxResults 5 to 1000).
  const pages = paginateDescribeInstances(
    { client: ec2Client() },
    { Filters: [{ Name: 'tag-key', Values: [LAST_RESTART_TAG] }], MaxResults: 1000 },
  );
  for await (const page of pages) {
    for (const i of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const text = tagMapUpper(i.Tags)[LAST_RESTART_TAG];
      if (text === undefined) continue;
      const last = readable(decodeLastRestart, text);
      if (typeof last !== 'string' && now.getTime() - last.at.getTime() >= RECENT_MS) continue;
      restarts.push({
        resource: `instance ${i.InstanceId}`,
        detail: typeof last === 'string' ? last : `${last.what} at ${last.at.toISOString()} (${last.via})`,
      });
    }
  }
};

const copyRows = async (regions: string[], copies: StatusRow[]) => {
  // DescribeDBSnapshots and DescribeDBClusterSnapshots page by Marker (100 per page at most), followed
  // to the end by listSnapshots.
  for (const region of regions) {
    for (const s of await listSnapshots(rdsClient(region))) {
      if (!s.sourceArn || !IN_FLIGHT.has(s.status)) continue;
      copies.push({
        resource: `${s.kind === 'cluster' ? 'cluster snapshot' : 'snapshot'} ${region}/${s.id}`,
        detail: `${s.status}, copy of ${s.sourceArn}`,
      });
    }
  }
};

const stamp = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The stage's lease table, read whole: a Scan (1 MB per page, followed by LastEvaluatedKey) of a table
 * that holds one item per scope being acted on, per restart cooldown and per carried-over list. Expired
 * leases linger until DynamoDB's TTL removes them and are left out. A stage without a table (not
 * deployed in this region) is a note, not an error.
 */
const leaseRows = async (table: string, now: Date, leases: StatusRow[], carried: StatusRow[]) => {
  try {
    for await (const page of paginateScan({ client: dynamoDbClient() }, { TableName: table })) {
      for (const item of page.Items ?? []) {
        const scope = item.scope?.S ?? '';
        if (scope.startsWith('carryover#')) {
          const [, fn = '?', action = '?'] = scope.split('#');
          const count = item.arns?.L?.length ?? 0;
          carried.push({
            resource: `${fn} ${action}`,
            detail: `${count} resource(s) left undone by the last run (${stamp(Number(item.savedAt?.N ?? 0))}); the next ${action} starts with them`,
          });
          continue;
        }
        const expiresAt = Number(item.expiresAt?.N ?? 0);
        if (expiresAt <= now.getTime()) continue;
        const acquiredAt = Number(item.acquiredAt?.N ?? 0);
        leases.push({
          resource: scope,
          detail: `held by ${item.holder?.S || 'an unknown holder'} for ${formatAge(now.getTime() - acquiredAt)} (since ${stamp(acquiredAt)}, expires ${stamp(expiresAt)})`,
        });
      }
    }
    return undefined;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException')
      return `leases: there is no lease table ${table} in this region (is the stage deployed here?)`;
    throw error;
  }
};

/** Reads everything in parallel; a part that cannot be read becomes a note, not a crash. */
export const readStatus = async (options: StatusOptions, now = new Date()): Promise<Status> => {
  const { copyRegions, leaseTable } = options;
  const status: Status = {
    parked: [],
    rotations: [],
    restarts: [],
    copies: [],
    leases: [],
    carriedOver: [],
    notes: [],
  };
  const parts: [string, Promise<string | void>][] = [
    ['ECS services', ecsRows(now, status.parked, status.restarts)],
    ['Auto Scaling groups', groupRows(status.parked, status.rotations)],
    ['EC2 instances', instanceRows(now, status.restarts)],
    ['RDS snapshot copies', copyRows(copyRegions, status.copies)],
    [`leases in ${leaseTable}`, leaseRows(leaseTable, now, status.leases, status.carriedOver)],
  ];
  const settled = await Promise.allSettled(parts.map(([, p]) => p));
  settled.forEach((s, i) => {
    if (s.status === 'rejected')
      status.notes.push(`could not read ${parts[i]?.[0]}: ${(s.reason as Error).message}`);
    else if (typeof s.value === 'string') status.notes.push(s.value);
  });
  if (copyRegions.length === 0)
    status.notes.push('copies in flight: name the target regions with --copy-region');
  const { parked, rotations, restarts, copies, leases, carriedOver } = status;
  for (const list of [parked, rotations, restarts, copies, leases, carriedOver]) {
    list.sort((a, b) => a.resource.localeCompare(b.resource));
  }
  return status;
};

const section = (title: string, rows: StatusRow[], empty: string) => {
  if (rows.length === 0) return `${title}: ${empty}`;
  const table = new Table({
    head: ['RESOURCE', 'DETAIL'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [44, 80],
  });
  for (const r of rows) table.push([r.resource, r.detail]);
  return `${title} (${rows.length}):\n${table.toString()}`;
};

export const renderStatus = (s: Status): string =>
  [
    section('Parked by nightshift', s.parked, 'nothing'),
    section('Rotations in progress', s.rotations, 'none'),
    section('Restarts in the last 24 h', s.restarts, 'none'),
    section('Snapshot copies in flight', s.copies, 'none'),
    section('Leases held now', s.leases, 'none'),
    section('Work carried over to the next run', s.carriedOver, 'none'),
    ...s.notes.map((n) => `note: ${n}`),
  ].join('\n\n');
