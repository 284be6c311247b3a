/**
 * Seeds moto with RDS instances, clusters, EBS volumes and their snapshots, reads back their tags, and
 * builds EventBridge events from the real samples in events/aws.rds and events/aws.ec2.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateDBClusterCommand,
  CreateDBClusterSnapshotCommand,
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  ListTagsForResourceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';

export const REGION = 'eu-central-1';
/** moto's default account. */
export const ACCOUNT = '123456789012';

export type Tags = Record<string, string>;

export interface SnapshotSeedClients {
  rds: RDSClient;
  ec2: EC2Client;
}

export const snapshotSeedClients = (endpoint: string, region = REGION): SnapshotSeedClients => {
  const config = { endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  return { rds: new RDSClient(config), ec2: new EC2Client(config) };
};

const toTags = (tags: Tags = {}) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
const fromTags = (tags: { Key?: string; Value?: string }[] | undefined): Tags =>
  Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

export const rdsSnapshotArn = (id: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:snapshot:${id}`;
export const rdsClusterSnapshotArn = (id: string) =>
  `arn:aws:rds:${REGION}:${ACCOUNT}:cluster-snapshot:${id}`;
export const ebsSnapshotArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:snapshot/${id}`;

/** A DB instance; moto, like RDS with backups on, takes an automated snapshot of it at once. */
export const createDatabase = async (c: SnapshotSeedClients, id: string, tags: Tags = {}) => {
  await c.rds.send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: id,
      DBInstanceClass: 'db.t3.micro',
      Engine: 'postgres',
      MasterUsername: 'nightshift',
      MasterUserPassword: 'not-a-secret-1',
      AllocatedStorage: 20,
      BackupRetentionPeriod: 1,
      Tags: toTags(tags),
    }),
  );
};

/** The ARN of the automated snapshot of a DB instance. */
export const automatedSnapshotArn = async (c: SnapshotSeedClients, dbId: string): Promise<string> => {
  const out = await c.rds.send(
    new DescribeDBSnapshotsCommand({ DBInstanceIdentifier: dbId, SnapshotType: 'automated' }),
  );
  const arn = out.DBSnapshots?.[0]?.DBSnapshotArn;
  if (!arn) throw new Error(`moto made no automated snapshot of ${dbId}`);
  return arn;
};

export const createDbSnapshot = async (c: SnapshotSeedClients, dbId: string, id: string, tags?: Tags) => {
  await c.rds.send(
    new CreateDBSnapshotCommand({
      DBInstanceIdentifier: dbId,
      DBSnapshotIdentifier: id,
      ...(tags && { Tags: toTags(tags) }),
    }),
  );
  return rdsSnapshotArn(id);
};

export const deleteDatabase = (c: SnapshotSeedClients, id: string) =>
  c.rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: id, SkipFinalSnapshot: true }));

export const createCluster = async (c: SnapshotSeedClients, id: string, tags: Tags = {}) => {
  await c.rds.send(
    new CreateDBClusterCommand({
      DBClusterIdentifier: id,
      Engine: 'aurora-postgresql',
      MasterUsername: 'nightshift',
      MasterUserPassword: 'not-a-secret-1',
      Tags: toTags(tags),
    }),
  );
};

export const automatedClusterSnapshotArn = async (c: SnapshotSeedClients, clusterId: string) => {
  const out = await c.rds.send(
    new DescribeDBClusterSnapshotsCommand({ DBClusterIdentifier: clusterId, SnapshotType: 'automated' }),
  );
  const arn = out.DBClusterSnapshots?.[0]?.DBClusterSnapshotArn;
  if (!arn) throw new Error(`moto made no automated snapshot of cluster ${clusterId}`);
  return arn;
};

export const createClusterSnapshot = async (
  c: SnapshotSeedClients,
  clusterId: string,
  id: string,
  tags?: Tags,
) => {
  await c.rds.send(
    new CreateDBClusterSnapshotCommand({
      DBClusterIdentifier: clusterId,
      DBClusterSnapshotIdentifier: id,
      ...(tags && { Tags: toTags(tags) }),
    }),
  );
  return rdsClusterSnapshotArn(id);
};

export const createVolume = async (c: SnapshotSeedClients, tags: Tags = {}): Promise<string> => {
  const out = await c.ec2.send(
    new CreateVolumeCommand({
      AvailabilityZone: `${REGION}a`,
      Size: 1,
      ...(Object.keys(tags).length > 0 && {
        TagSpecifications: [{ ResourceType: 'volume', Tags: toTags(tags) }],
      }),
    }),
  );
  return out.VolumeId ?? '';
};

export const deleteVolume = (c: SnapshotSeedClients, id: string) =>
  c.ec2.send(new DeleteVolumeCommand({ VolumeId: id }));

export const createEbsSnapshot = async (
  c: SnapshotSeedClients,
  volumeId: string,
  tags?: Tags,
): Promise<string> => {
  const out = await c.ec2.send(
    new CreateSnapshotCommand({
      VolumeId: volumeId,
      ...(tags && { TagSpecifications: [{ ResourceType: 'snapshot', Tags: toTags(tags) }] }),
    }),
  );
  return out.SnapshotId ?? '';
};

/** Tags of an RDS snapshot or cluster snapshot, as RDS reports them. */
export const rdsTags = async (c: SnapshotSeedClients, arn: string): Promise<Tags> =>
  fromTags((await c.rds.send(new ListTagsForResourceCommand({ ResourceName: arn }))).TagList);

/** Tags of an EBS snapshot, as EC2 reports them. */
export const ebsTags = async (c: SnapshotSeedClients, snapshotId: string): Promise<Tags> => {
  const out = await c.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
  return fromTags(out.Snapshots?.[0]?.Tags);
};

/** `count` tags `prefix-00`…, for the 50-tag limit. */
export const manyTags = (prefix: string, count: number, value = 'x'): Tags =>
  Object.fromEntries(
    Array.from({ length: count }, (_, i) => [`${prefix}-${String(i).padStart(2, '0')}`, value]),
  );

const sample = (dir: string, file: string): Record<string, unknown> & { detail: Record<string, unknown> } =>
  JSON.parse(readFileSync(join('events', dir, 'samples', file), 'utf8'));

const RDS_SAMPLES: Record<string, string> = {
  'RDS-EVENT-0042': 'db-snapshot-manual-created.json',
  'RDS-EVENT-0091': 'db-snapshot-automated-created.json',
  'RDS-EVENT-0075': 'cluster-snapshot-manual-created.json',
  'RDS-EVENT-0169': 'cluster-snapshot-automated-created.json',
  'RDS-EVENT-0090': 'db-snapshot-creating.json',
};

/** The real sample of an RDS snapshot event, about the snapshot `arn`. */
export const rdsSnapshotEvent = (eventId: keyof typeof RDS_SAMPLES & string, arn: string) => {
  const event = sample('aws.rds', RDS_SAMPLES[eventId] ?? '');
  const id = arn.split(':').slice(6).join(':');
  return {
    ...event,
    resources: [arn],
    detail: { ...event.detail, EventID: eventId, SourceArn: arn, SourceIdentifier: id },
  };
};

/** The real sample of an EBS Snapshot Notification, with AWS's ARN quirk (region in the account field). */
export const ebsSnapshotEvent = (snapshotId: string, volumeId: string, result: 'succeeded' | 'failed') => {
  const event = sample(
    'aws.ec2',
    result === 'succeeded' ? 'ebs-snapshot-created.json' : 'ebs-snapshot-failed.json',
  );
  const snapshot = `arn:aws:ec2::${REGION}:snapshot/${snapshotId}`;
  return {
    ...event,
    resources: [snapshot],
    detail: { ...event.detail, snapshot_id: snapshot, source: `arn:aws:ec2::${REGION}:volume/${volumeId}` },
  };
};

/** The parts of a `Proxy` (test/support/proxy.ts) the copy-source emulation needs. */
interface RecordingProxy {
  requests: { operation: string; body: string }[];
  rewrite: (operation: string, transform: ((body: string) => string) | undefined) => void;
}

const xmlValue = (xml: string, tag: string) => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
const regionOf = (arn: string) => arn.split(':')[3] ?? '';
const accountOf = (arn: string) => arn.split(':')[4] ?? '';

/**
 * moto 5.2.1 leaves out what RDS records about a copy's origin. This adds it to moto's answers the way
 * AWS fills it in (RDS API reference): `SourceDBSnapshotIdentifier` on a DB snapshot copied across
 * Regions or accounts ("it only has a value in the case of a cross-account or cross-Region copy"), and
 * `SourceDBClusterSnapshotArn` on any cluster snapshot copy. Copies are learnt from the CopyDBSnapshot
 * and CopyDBClusterSnapshot requests that pass through the proxy, matched to moto's answer by the
 * identifier of the new snapshot; snapshots created any other way get nothing, as in AWS.
 */
export const emulateCopySources = (proxy: RecordingProxy) => {
  const sources = new Map<string, string>();
  const learn = (
    operation: string,
    element: string,
    arnTag: string,
    sourceParam: string,
    targetParam: string,
    field: string,
    crossOnly: boolean,
  ) =>
    proxy.rewrite(operation, (body) => {
      const copy = new RegExp(`<${element}>[\\s\\S]*?</${element}>`).exec(body)?.[0];
      const arn = copy && xmlValue(copy, arnTag);
      const id =
        copy &&
        xmlValue(copy, element === 'DBSnapshot' ? 'DBSnapshotIdentifier' : 'DBClusterSnapshotIdentifier');
      if (!arn || !id) return body;
      const request = [...proxy.requests]
        .reverse()
        .map((r) => new URLSearchParams(r.body))
        .find((p) => p.get('Action') === operation && p.get(targetParam)?.toLowerCase() === id.toLowerCase());
      const given = request?.get(sourceParam) ?? '';
      const source = given.startsWith('arn:')
        ? given
        : `arn:aws:rds:${regionOf(arn)}:${accountOf(arn)}:${element === 'DBSnapshot' ? 'snapshot' : 'cluster-snapshot'}:${given}`;
      if (!given || (crossOnly && regionOf(source) === regionOf(arn) && accountOf(source) === accountOf(arn)))
        return body;
      sources.set(arn, source);
      return addField(body, element, arnTag, field);
    });
  const addField = (body: string, element: string, arnTag: string, field: string) =>
    body.replace(new RegExp(`<${element}>([\\s\\S]*?)</${element}>`, 'g'), (whole, inner: string) => {
      const source = sources.get(xmlValue(inner, arnTag) ?? '');
      return source && !inner.includes(`<${field}>`)
        ? `<${element}>${inner}<${field}>${source}</${field}></${element}>`
        : whole;
    });
  learn(
    'CopyDBSnapshot',
    'DBSnapshot',
    'DBSnapshotArn',
    'SourceDBSnapshotIdentifier',
    'TargetDBSnapshotIdentifier',
    'SourceDBSnapshotIdentifier',
    true,
  );
  learn(
    'CopyDBClusterSnapshot',
    'DBClusterSnapshot',
    'DBClusterSnapshotArn',
    'SourceDBClusterSnapshotIdentifier',
    'TargetDBClusterSnapshotIdentifier',
    'SourceDBClusterSnapshotArn',
    false,
  );
  proxy.rewrite('DescribeDBSnapshots', (body) =>
    addField(body, 'DBSnapshot', 'DBSnapshotArn', 'SourceDBSnapshotIdentifier'),
  );
  proxy.rewrite('DescribeDBClusterSnapshots', (body) =>
    addField(body, 'DBClusterSnapshot', 'DBClusterSnapshotArn', 'SourceDBClusterSnapshotArn'),
  );
  return {
    /** Copy ARN → the source ARN RDS records for it. */
    sources,
    /** Stops the emulation (the proxy answers as moto does again). */
    stop: () => {
      for (const op of [
        'CopyDBSnapshot',
        'CopyDBClusterSnapshot',
        'DescribeDBSnapshots',
        'DescribeDBClusterSnapshots',
      ])
        proxy.rewrite(op, undefined);
    },
  };
};
