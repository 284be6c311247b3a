/**
 * The fleet test, end to end through `nightshift fleet run --local` and the real ecs-scheduler
 * handler, against moto with several accounts × 2 regions: one account not in the allowlist, one whose
 * alias looks like production, one whose Organizations name does — refused, nothing changed there (no
 * changing call made with their credentials); one whose spoke role is missing — failed, the others
 * unaffected, then redriven alone once its spoke is there; the rest parked and restored exactly; the
 * hub's own services untouched.
 *
 * moto does not check trust policies or external ids: the STS gate in the proxy answers AssumeRole of
 * spoke roles as AWS would for the spokes deployed (test/support/sts-gate.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '#test/support/cli.ts';
import { observe, seedClients, seedEstate, type ClusterSpec } from '#test/support/ecs-estate.ts';
import { accountCredentials, organization, setAlias } from '#test/support/fleet-estate.ts';
import { leaseTable } from '#test/support/leases.ts';
import { motoTestsEnabled, startMoto, useEndpoint, type Moto } from '#test/support/moto.ts';
import { startProxy, type Proxy } from '#test/support/proxy.ts';
import { HUB_ACCOUNT, stsGate, type StsGate } from '#test/support/sts-gate.ts';

const TABLE = 'nightshift-dev-leases';
const EXTERNAL_ID = 'fleet-e2e-external-id';
const REGIONS = ['eu-central-1', 'eu-west-1'];
const STAGING = '111111111111'; // alias acme-shop-staging
const PRODUCTION = '222222222222'; // alias acme-shop-production
const OUTSIDE = '333333333333'; // not in allowedAccounts
const MISSING = '444444444444'; // its spoke role is not deployed at first

const ESTATE: ClusterSpec[] = [
  {
    name: 'stage',
    services: [
      { name: 'web', desired: 3, scaling: { min: 2, max: 6 } },
      { name: 'worker', desired: 2 },
    ],
  },
];
const RUNNING = { 'stage/web': 3, 'stage/worker': 2 };
const PARKED = { 'stage/web': 0, 'stage/worker': 0 };
const READS = /^(Describe|List|Get)/;

interface Doc {
  run: string;
  targets: Array<{ account: string; region: string; status: string; reason: string }>;
}

describe.runIf(motoTestsEnabled())(
  'a fleet run across accounts and regions (moto, the CLI, the real handler)',
  () => {
    let moto: Moto;
    let proxy: Proxy;
    let gate: StsGate;
    let live: string;
    let dev: string;

    const clientsIn = async (account: string, region: string) =>
      account === HUB_ACCOUNT
        ? seedClients(moto.url, region)
        : seedClients(moto.url, region, await accountCredentials(moto.url, account));
    const desired = async (account: string, region: string) => {
      const seen = await observe(await clientsIn(account, region), ['stage'], []);
      return Object.fromEntries(Object.entries(seen.services).map(([k, s]) => [k, s.desired]));
    };
    const scaling = async (account: string, region: string) => {
      const seen = await observe(await clientsIn(account, region), ['stage'], []);
      return seen.services['stage/web']?.scaling;
    };
    const changesIn = (account: string) =>
      proxy.delivered().filter(
        (r) =>
          gate.accountOf(r) === account &&
          !READS.test(r.operation) &&
          r.operation !== 'AssumeRole' &&
          // The hub's own table keeps the leases and the run's rows: that is the hub's bookkeeping.
          !(account === HUB_ACCOUNT && r.service.startsWith('DynamoDB')),
      );
    const fleet = (args: string[]) =>
      cli([...args, '--local', '--yes', '--json'], { interactive: true }).then((run) => ({
        ...run,
        doc: run.out ? (JSON.parse(run.out) as Doc) : undefined,
      }));
    const status = (doc: Doc | undefined) =>
      Object.fromEntries((doc?.targets ?? []).map((t) => [`${t.account}#${t.region}`, t.status]));
    const params = () => [
      '--param',
      `allowedAccounts=${[STAGING, PRODUCTION, MISSING, live, dev].join(',')}`,
      '--param',
      `spokeExternalId=${EXTERNAL_ID}`,
      '--param',
      'fleetMaxConcurrency=4',
    ];
    const accounts = () => [STAGING, PRODUCTION, OUTSIDE, MISSING, live, dev];

    beforeAll(async () => {
      moto = await startMoto();
      proxy = await startProxy(moto.url);
      useEndpoint(proxy.url);
      await leaseTable(moto.url, TABLE);
      gate = stsGate(proxy);
      const org = await organization(moto.url, ['Payments Live', 'Team Data Dev']);
      live = org['Payments Live']!;
      dev = org['Team Data Dev']!;
      for (const account of [...accounts(), HUB_ACCOUNT])
        for (const region of REGIONS) await seedEstate(await clientsIn(account, region), ESTATE);
      for (const account of [STAGING, PRODUCTION, OUTSIDE, live, dev])
        gate.deploy({ account, stage: 'dev', externalId: EXTERNAL_ID });
      await setAlias(moto.url, await accountCredentials(moto.url, STAGING), 'acme-shop-staging');
      await setAlias(moto.url, await accountCredentials(moto.url, PRODUCTION), 'acme-shop-production');
    }, 180_000);
    afterAll(async () => {
      await proxy?.close();
      moto?.stop();
    });

    it('parks the allowed accounts, refuses the others untouched, fails the unreachable one alone, redrives it, and restores all exactly', async () => {
      const stop = await fleet([
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        '{"action":"stop","clusters":["stage"]}',
        '--accounts',
        accounts().join(','),
        '--regions',
        REGIONS.join(','),
        ...params(),
      ]);

      expect(stop.code, stop.err).toBe(1); // a target failed; refused ones are not failures
      const expected: Record<string, string> = {};
      for (const region of REGIONS) {
        expected[`${STAGING}#${region}`] = 'succeeded';
        expected[`${dev}#${region}`] = 'succeeded';
        expected[`${PRODUCTION}#${region}`] = 'refused';
        expected[`${OUTSIDE}#${region}`] = 'refused';
        expected[`${live}#${region}`] = 'refused';
        expected[`${MISSING}#${region}`] = 'failed';
      }
      expect(status(stop.doc)).toEqual(expected);
      const reasons = Object.fromEntries(stop.doc!.targets.map((t) => [t.account, t.reason]));
      expect(reasons[PRODUCTION]).toContain('alias "acme-shop-production" matches "production"');
      expect(reasons[OUTSIDE]).toContain('not in ALLOWED_ACCOUNTS');
      expect(reasons[live]).toContain('Organizations name "Payments Live" matches "live"');
      expect(reasons[MISSING]).toContain('could not assume');

      for (const region of REGIONS) {
        expect(await desired(STAGING, region)).toEqual(PARKED);
        expect(await desired(dev, region)).toEqual(PARKED);
        for (const untouched of [PRODUCTION, OUTSIDE, live, MISSING, HUB_ACCOUNT])
          expect(await desired(untouched, region), `${untouched} ${region}`).toEqual(RUNNING);
      }
      for (const refused of [PRODUCTION, OUTSIDE, live, MISSING, HUB_ACCOUNT])
        expect(changesIn(refused), refused).toEqual([]);
      // An account outside the list was not even assumed; the others were, with the run's session name.
      expect(gate.attempts.some((a) => a.roleArn.includes(OUTSIDE))).toBe(false);
      expect(gate.attempts.every((a) => a.sessionName === `nightshift-${stop.doc!.run}`.slice(0, 64))).toBe(
        true,
      );

      // The spoke is deployed: the redrive runs the failed targets only.
      gate.deploy({ account: MISSING, stage: 'dev', externalId: EXTERNAL_ID });
      gate.attempts.length = 0;
      const redrive = await fleet(['fleet', 'redrive', stop.doc!.run, ...params()]);
      expect(redrive.code, redrive.err).toBe(0);
      expect(status(redrive.doc)).toEqual({
        [`${MISSING}#eu-central-1`]: 'succeeded',
        [`${MISSING}#eu-west-1`]: 'succeeded',
      });
      expect(new Set(gate.attempts.map((a) => a.roleArn))).toEqual(
        new Set([`arn:aws:iam::${MISSING}:role/nightshift-dev-ecs-scheduler-spoke`]),
      );
      for (const region of REGIONS) expect(await desired(MISSING, region)).toEqual(PARKED);

      // Morning: every parked service comes back exactly, autoscaling included.
      const start = await fleet([
        'fleet',
        'run',
        'ecs-scheduler',
        '--input',
        '{"action":"start","clusters":["stage"]}',
        '--accounts',
        accounts().join(','),
        '--regions',
        REGIONS.join(','),
        ...params(),
      ]);
      expect(start.code, start.err).toBe(0);
      for (const account of accounts())
        for (const region of REGIONS) {
          expect(await desired(account, region), `${account} ${region}`).toEqual(RUNNING);
          expect(await scaling(account, region)).toEqual({
            min: 2,
            max: 6,
            suspended: [false, false, false],
          });
        }
      expect(await desired(HUB_ACCOUNT, 'eu-central-1')).toEqual(RUNNING);
      for (const refused of [PRODUCTION, OUTSIDE, live, HUB_ACCOUNT]) expect(changesIn(refused)).toEqual([]);
    }, 300_000);
  },
);
