/**
 * The built bundles keep only the SDK schemas they reach (scripts/shake-sdk-schemas.ts): AWS errors
 * must still be told apart by the bundle, as deployed. The built snapshot-tags bundle, against moto
 * through the recording proxy, meets an EC2 error code (InvalidSnapshot.NotFound, which EC2 does not
 * model: the SDK names the error by its code) and an RDS one (DBSnapshotNotFound on the wire, which
 * only the registered error schema turns into DBSnapshotNotFoundFault, the name the function checks).
 * And the SNS client, which the bundles load only in runs that publish a summary (shared/summary.ts),
 * still publishes from its own chunk.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeleteDBSnapshotCommand } from '@aws-sdk/client-rds';
import { DeleteSnapshotCommand } from '@aws-sdk/client-ec2';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import type { Report } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';
import { leaseTable, TEST_LEASE_TABLE } from '#test/support/leases.ts';
import { freePort, motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy, type RecordedRequest } from '#test/support/proxy.ts';
import {
  createDatabase,
  createDbSnapshot,
  createEbsSnapshot,
  createVolume,
  ebsSnapshotArn,
  ebsTags,
  rdsSnapshotEvent,
  snapshotSeedClients,
  type SnapshotSeedClients,
} from '#test/support/rds-estate.ts';

type Handler = (event: unknown, context: unknown) => Promise<Report>;

const DATA = { team: 'shop', Name: 'data' };
// moto's topic ARNs follow the name: the topic is created again after each reset, under the same ARN.
const TOPIC = 'nightshift-dev-ops';
const TOPIC_ARN = `arn:aws:sns:eu-central-1:123456789012:${TOPIC}`;

describe.runIf(motoTestsEnabled())('the built snapshot-tags bundle tells AWS errors apart', () => {
  let moto: Moto;
  let proxy: Proxy;
  let aws: SnapshotSeedClients;
  let handler: Handler;
  let sns: SNSClient;
  let subscriber: Server;
  let subscriberUrl: string;
  const received: { Subject?: string; Message?: string }[] = [];
  const ids = (r: RecordedRequest, prefix: string) =>
    [...new URLSearchParams(r.body).entries()].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);

  beforeAll(async () => {
    // moto lists the snapshots of its built-in AMIs as the account's own; AWS does not.
    process.env.MOTO_EC2_LOAD_DEFAULT_AMIS = 'false';
    moto = await startMoto();
    delete process.env.MOTO_EC2_LOAD_DEFAULT_AMIS;
    proxy = await startProxy(moto.url);
    useEndpoint(proxy.url);
    process.env.LEASE_TABLE = TEST_LEASE_TABLE;
    // Read once per cold start, at the bundle's first invocation.
    process.env.SUMMARY_TOPIC_ARN = TOPIC_ARN;
    aws = snapshotSeedClients(moto.url);
    sns = new SNSClient({ endpoint: moto.url, region: 'eu-central-1' });
    subscriber = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as { Subject?: string; Message?: string });
        res.end();
      });
    });
    const port = await freePort();
    await new Promise<void>((done) => subscriber.listen(port, '127.0.0.1', done));
    subscriberUrl = `http://127.0.0.1:${port}/`;
    const file = resolve('dist', 'snapshot-tags', 'index.mjs');
    expect(existsSync(file), `${file} missing: run npm run build`).toBe(true);
    handler = ((await import(pathToFileURL(file).href)) as { handler: Handler }).handler;
  });
  afterAll(async () => {
    delete process.env.LEASE_TABLE;
    delete process.env.SUMMARY_TOPIC_ARN;
    await new Promise((done) => subscriber?.close(done));
    await proxy?.close();
    moto?.stop();
  });
  beforeEach(async () => {
    await moto.reset();
    await leaseTable(moto.url);
    await sns.send(new CreateTopicCommand({ Name: TOPIC }));
    await sns.send(new SubscribeCommand({ TopicArn: TOPIC_ARN, Protocol: 'http', Endpoint: subscriberUrl }));
    received.length = 0;
    proxy.requests.length = 0;
  });

  it('reports an EBS snapshot deleted before its CreateTags as gone (InvalidSnapshot.NotFound), tags the rest, and publishes the summary', async () => {
    // Prepare: three snapshots of one volume; the second is deleted when the first CreateTags naming it arrives
    const volume = await createVolume(aws, DATA);
    const [first, doomed, last] = [
      await createEbsSnapshot(aws, volume),
      await createEbsSnapshot(aws, volume),
      await createEbsSnapshot(aws, volume),
    ];
    let deleted = false;
    proxy.before('CreateTags', async (request) => {
      if (deleted || !ids(request, 'ResourceId.').includes(doomed!)) return;
      deleted = true;
      await aws.ec2.send(new DeleteSnapshotCommand({ SnapshotId: doomed }));
    });

    // Act
    const report = await handler({ action: 'sweep' }, lambdaContext('snapshot-tags'));

    // Assess: moto's state, the report
    expect(await ebsTags(aws, first!)).toEqual(DATA);
    expect(await ebsTags(aws, last!)).toEqual(DATA);
    expect(report.resources.find((r) => r.arn === ebsSnapshotArn(doomed!))).toEqual({
      arn: ebsSnapshotArn(doomed!),
      type: 'ebs-snapshot',
      outcome: 'skipped',
      detail:
        'no longer exists: InvalidSnapshot.NotFound when its tags were sent (deleted since it was read); nothing to tag',
    });
    expect(report.summary).toMatchObject({ changed: 2, skipped: 1, failed: 0 });
    // the summary, through the SNS client the bundle loaded on demand for it
    expect(proxy.delivered().filter((r) => r.operation === 'Publish')).toHaveLength(1);
    expect(received).toEqual([
      expect.objectContaining({
        Subject: 'nightshift snapshot-tags sweep: 2 changed, 0 failed',
        Message: expect.stringContaining(doomed!),
      }),
    ]);
    proxy.before('CreateTags', undefined);
  });

  // Last: the proxy's stub answers every AddTagsToResource from here on (a stub cannot be removed).
  it('names an RDS snapshot deleted before its AddTagsToResource by its modelled error, DBSnapshotNotFoundFault', async () => {
    // Prepare: moto tags a deleted RDS snapshot without complaint; AWS answers DBSnapshotNotFound (404)
    await createDatabase(aws, 'orders', { team: 'shop' });
    const manual = await createDbSnapshot(aws, 'orders', 'orders-manual');
    proxy.before('AddTagsToResource', async () => {
      await aws.rds.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: 'orders-manual' }));
    });
    proxy.stub('AddTagsToResource', {
      status: 404,
      contentType: 'text/xml',
      body:
        '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>' +
        '<Code>DBSnapshotNotFound</Code><Message>DBSnapshot orders-manual not found.</Message></Error>' +
        '<RequestId>8a1d3c52-1f0e-4a7b-9c6d-2e3f4a5b6c7d</RequestId></ErrorResponse>',
    });

    // Act
    const report = await handler(rdsSnapshotEvent('RDS-EVENT-0042', manual), lambdaContext('snapshot-tags'));

    // Assess
    expect(report.resources).toEqual([
      {
        arn: manual,
        type: 'rds-snapshot',
        outcome: 'skipped',
        detail:
          'no longer exists: DBSnapshotNotFoundFault when its tags were sent (deleted since it was read); nothing to tag',
      },
    ]);
  });
});
