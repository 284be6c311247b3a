/**
 * What `nightshift --local` applies: the deployed function's configuration in a stage, worked out from
 * serverless.yml, and the operator's own variables only where they make a run more guarded.
 */
import { describe, expect, it } from 'vitest';
import { readServerless, parseServerless } from '#scripts/cli/serverless-source.ts';
import { describeEnvironment, localEnvironment, stageConfig } from '#scripts/cli/stage-config.ts';

const { file } = await readServerless();

describe('the configuration --local applies, from serverless.yml', () => {
  it('gives ecs-scheduler in prod its dry-run default and the stage’s lease table', () => {
    const prod = stageConfig(file, 'ecs-scheduler', 'prod');
    const dev = stageConfig(file, 'ecs-scheduler', 'dev');

    expect(prod.env).toEqual({
      NIGHTSHIFT_STAGE: 'prod',
      LEASE_TABLE: 'nightshift-prod-leases',
      PROTECTED_TAGS: '',
      DRY_RUN: 'true',
    });
    expect(prod.unresolved).toEqual(['SUMMARY_TOPIC_ARN']);
    expect(prod.ownParams).toBe(true);
    expect(dev.env.DRY_RUN).toBe('false');
    expect(dev.env.LEASE_TABLE).toBe('nightshift-dev-leases');
  });

  it('maps every function’s own variables through the stage params', () => {
    expect(stageConfig(file, 'rds-snapshot-copy', 'stage').env).toMatchObject({
      TARGET_REGIONS: 'eu-west-1',
      TARGET_KMS_KEYS: '',
      RETENTION_DAYS: '7',
      SOURCE_TAGS: '',
      DRY_RUN: 'false',
    });
    expect(stageConfig(file, 'instance-rotation', 'dev').env).toMatchObject({
      MAX_AGE: '14d',
      REPLACEMENT_TIMEOUT_MINUTES: '60',
    });
    expect(stageConfig(file, 'ssm-restart', 'dev').env).toMatchObject({
      RESTART_COOLDOWN_MINUTES: '15',
      MAX_CONCURRENCY: '25%',
      MAX_ERRORS: '1',
    });
  });

  it('overrides params.default with params.<stage>, and uses the defaults for a stage without params', () => {
    const custom = parseServerless(`
service: ops
params:
  default: { protectedTags: '', ecsDryRun: 'false', killSwitch: 'false' }
  qa: { protectedTags: 'team=payments', ecsDryRun: true, killSwitch: 'true' }
provider:
  environment:
    LEASE_TABLE: { Ref: LeaseTable }
functions:
  ecs-scheduler:
    environment:
      POWERTOOLS_SERVICE_NAME: ecs-scheduler
      PROTECTED_TAGS: \${param:protectedTags}
      DRY_RUN: \${param:ecsDryRun}
      LABEL: 'nightshift-\${sls:stage}'
      FROM_SSM: \${ssm:/x/y}
      MISSING: \${param:nope}
`);

    const qa = stageConfig(custom, 'ecs-scheduler', 'qa');
    const other = stageConfig(custom, 'ecs-scheduler', 'feature-x');

    expect(qa.env).toEqual({
      LEASE_TABLE: 'ops-qa-leases',
      PROTECTED_TAGS: 'team=payments',
      DRY_RUN: 'true',
      LABEL: 'nightshift-qa',
    });
    expect(qa.unresolved).toEqual(['FROM_SSM', 'MISSING']);
    expect(qa.killSwitch).toBe(true);
    expect(other).toMatchObject({ ownParams: false, killSwitch: false });
    expect(other.env).toMatchObject({ PROTECTED_TAGS: '', DRY_RUN: 'false' });
  });
});

describe('the operator’s own variables under --local', () => {
  const prod = stageConfig(file, 'ecs-scheduler', 'prod');
  const dev = stageConfig(file, 'ecs-scheduler', 'dev');

  it('never turns off a stage’s DRY_RUN=true, whether unset, empty or false', () => {
    for (const own of [undefined, '', 'false', 'FALSE']) {
      expect(localEnvironment(prod, { DRY_RUN: own }).env.DRY_RUN).toBe('true');
    }
    expect(localEnvironment(prod, { DRY_RUN: 'false' }).notes).toEqual([
      'your DRY_RUN=false is ignored: stage prod has DRY_RUN=true, and a local run is never less guarded than its stage',
    ]);
  });

  it('lets DRY_RUN=true make a run of a stage that changes things a dry run', () => {
    const local = localEnvironment(dev, { DRY_RUN: 'true' });

    expect(local.env.DRY_RUN).toBe('true');
    expect(local.notes).toEqual(['your DRY_RUN=true applies: every run is a dry run (stage dev has false)']);
  });

  it('adds the operator’s protection rules to the stage’s, keeping the built-in rules the stage keeps', () => {
    const local = localEnvironment(dev, { PROTECTED_TAGS: 'team=payments, env=PROD' });
    const custom = localEnvironment(
      { ...dev, env: { ...dev.env, PROTECTED_TAGS: 'tier=critical' } },
      { PROTECTED_TAGS: 'team=payments' },
    );

    expect(local.env.PROTECTED_TAGS).toBe(
      'env=prod,env=production,env=live,environment=prod,environment=production,environment=live,' +
        'stage=prod,stage=production,stage=live,team=payments',
    );
    expect(custom.env.PROTECTED_TAGS).toBe('tier=critical,team=payments');
  });

  it('refuses a PROTECTED_TAGS it cannot read rather than run without the protection meant', () => {
    expect(() => localEnvironment(dev, { PROTECTED_TAGS: 'team' })).toThrow(
      /PROTECTED_TAGS in your environment is not key=value/,
    );
  });

  it('keeps the stage’s own variables, saying which of the operator’s were ignored', () => {
    const copy = stageConfig(file, 'rds-snapshot-copy', 'dev');

    const local = localEnvironment(copy, {
      TARGET_REGIONS: 'us-east-1',
      LEASE_TABLE: 'mine',
      RETENTION_DAYS: '7',
    });

    expect(local.env).toMatchObject({ TARGET_REGIONS: 'eu-west-1', LEASE_TABLE: 'nightshift-dev-leases' });
    expect(local.notes).toEqual([
      "your LEASE_TABLE=mine is ignored: --local uses stage dev's LEASE_TABLE=nightshift-dev-leases",
      "your TARGET_REGIONS=us-east-1 is ignored: --local uses stage dev's TARGET_REGIONS=eu-west-1",
    ]);
  });

  it('describes what it applied in one line', () => {
    expect(describeEnvironment(localEnvironment(prod, {}).env)).toBe(
      'NIGHTSHIFT_STAGE=prod, LEASE_TABLE=nightshift-prod-leases, PROTECTED_TAGS="" (the built-in prod/production/live rules), DRY_RUN=true',
    );
  });
});
