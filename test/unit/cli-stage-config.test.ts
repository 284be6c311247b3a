/**
 * What `nightshift --local` applies: the deployed function's configuration in a stage, worked out from
 * serverless.yml, and the operator's own variables only where they make a run more guarded.
 */
import { describe, expect, it } from 'vitest';
import { readServerless, parseServerless } from '#scripts/cli/serverless-source.ts';
import {
  describeEnvironment,
  localEnvironment,
  stageConfig,
  unresolvedGuardrails,
  withDeployed,
} from '#scripts/cli/stage-config.ts';

const { file } = await readServerless();

describe('the configuration --local applies, from serverless.yml', () => {
  it('gives ecs-scheduler in prod its dry-run default and the stage’s lease table', () => {
    const prod = stageConfig(file, 'ecs-scheduler', 'prod');
    const dev = stageConfig(file, 'ecs-scheduler', 'dev');

    expect(prod.env).toEqual({
      NIGHTSHIFT_STAGE: 'prod',
      LEASE_TABLE: 'nightshift-prod-leases',
      ALLOWED_ACCOUNTS: '',
      PROTECTED_ACCOUNT_PATTERNS: 'prod,production,live',
      SPOKE_EXTERNAL_ID: '',
      PROTECTED_TAGS: '',
      DRY_RUN: 'true',
      SCHEDULE_GRACE_MINUTES: '15',
      OVERRIDE_MAX_HOURS: '24',
      ENVIRONMENT_START_TIMEOUT_MINUTES: '30',
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

  it('overrides params.default with params.<stage>, uses the defaults for a stage without params, and names what it cannot resolve', () => {
    const custom = parseServerless(`
service: ops
params:
  default: { protectedTags: '', ecsDryRun: 'false', killSwitch: 'false' }
  qa: { protectedTags: 'team=payments', ecsDryRun: true, killSwitch: 'true' }
provider:
  timeout: 30
  environment:
    LEASE_TABLE: { Ref: LeaseTable }
functions:
  ecs-scheduler:
    timeout: 300
    environment:
      POWERTOOLS_SERVICE_NAME: ecs-scheduler
      PROTECTED_TAGS: \${param:protectedTags}
      DRY_RUN: \${param:ecsDryRun}
      LABEL: 'nightshift-\${sls:stage}'
      FROM_SSM: \${ssm:/x/y}
      MISSING: \${param:nope}
  other:
    environment:
      DRY_RUN: \${param:ecsDryRun, 'true'}
      PROTECTED_TAGS: \${ssm:/nightshift/protected}
`);

    const qa = stageConfig(custom, 'ecs-scheduler', 'qa');
    const other = stageConfig(custom, 'ecs-scheduler', 'feature-x');
    const unguarded = stageConfig(custom, 'other', 'qa');

    expect(qa.env).toEqual({
      LEASE_TABLE: 'ops-qa-leases',
      PROTECTED_TAGS: 'team=payments',
      DRY_RUN: 'true',
      LABEL: 'nightshift-qa',
    });
    // Not guardrails: a local run takes them from the deployed function.
    expect(qa.unresolved).toEqual(['FROM_SSM', 'MISSING']);
    expect(unresolvedGuardrails(qa)).toEqual([]);
    // Guardrails serverless.yml cannot tell: a local run that would change something refuses.
    expect(unguarded.unresolved).toEqual(['DRY_RUN', 'PROTECTED_TAGS']);
    expect(unresolvedGuardrails(unguarded)).toEqual(['DRY_RUN', 'PROTECTED_TAGS']);
    expect(unguarded.unresolvedValues).toEqual({
      DRY_RUN: "${param:ecsDryRun, 'true'}",
      PROTECTED_TAGS: '${ssm:/nightshift/protected}',
    });
    expect(qa.killSwitch).toBe(true);
    expect(other).toMatchObject({ ownParams: false, killSwitch: false });
    expect(other.env).toMatchObject({ PROTECTED_TAGS: '', DRY_RUN: 'false' });
    expect(custom.timeouts).toEqual({ 'ecs-scheduler': 300, other: 30 });
  });

  it('reads each function’s timeout from serverless.yml, for the in-process Lambda context', () => {
    expect(file.timeouts).toMatchObject({ 'ecs-scheduler': 300, 'instance-rotation': 120 });
    expect(parseServerless('functions: { a: {}, b: { timeout: "${param:t}" } }').timeouts).toEqual({
      a: 6,
      b: undefined,
    });
  });
});

describe('the deployed function’s configuration under --local', () => {
  const dev = stageConfig(file, 'ecs-scheduler', 'dev');
  const name = 'nightshift-dev-ecs-scheduler';
  const deployed = (over: Record<string, string> = {}) => ({
    POWERTOOLS_SERVICE_NAME: 'ecs-scheduler',
    POWERTOOLS_LOG_LEVEL: 'INFO',
    NIGHTSHIFT_STAGE: 'dev',
    LEASE_TABLE: 'nightshift-dev-leases',
    SUMMARY_TOPIC_ARN: 'arn:aws:sns:eu-central-1:123456789012:nightshift-dev-ops',
    PROTECTED_TAGS: '',
    DRY_RUN: 'false',
    ...over,
  });

  it('takes DRY_RUN=true from either side: serverless.yml false and deployed true (a --param) is a dry run', () => {
    const merged = withDeployed(dev, deployed({ DRY_RUN: 'true' }), name);
    const prod = withDeployed(
      stageConfig(file, 'ecs-scheduler', 'prod'),
      deployed({ DRY_RUN: 'false' }),
      name,
    );

    expect(merged).toMatchObject({ env: { DRY_RUN: 'true' } });
    expect('notes' in merged && merged.notes).toContain(
      'DRY_RUN: serverless.yml has false, nightshift-dev-ecs-scheduler has true: true applies (the stricter)',
    );
    expect(prod).toMatchObject({ env: { DRY_RUN: 'true' } });
  });

  it('protects what either side protects: the built-in rules and the deployed ones, united', () => {
    const merged = withDeployed(dev, deployed({ PROTECTED_TAGS: 'team=payments' }), name);
    const both = withDeployed(
      { ...dev, env: { ...dev.env, PROTECTED_TAGS: 'tier=critical' } },
      deployed({ PROTECTED_TAGS: 'team=payments,tier=critical' }),
      name,
    );
    const unset = withDeployed(dev, (({ PROTECTED_TAGS: _, ...rest }) => rest)(deployed()), name);

    expect(merged).toMatchObject({
      env: {
        PROTECTED_TAGS:
          'env=prod,env=production,env=live,environment=prod,environment=production,environment=live,' +
          'stage=prod,stage=production,stage=live,team=payments',
      },
    });
    expect(both).toMatchObject({ env: { PROTECTED_TAGS: 'tier=critical,team=payments' } });
    // Unset on the deployed function is its built-in rules, as serverless.yml's "" is.
    expect(unset).toMatchObject({ env: { PROTECTED_TAGS: '' } });
  });

  it('takes the deployed value of every other variable and says where it differs', () => {
    const merged = withDeployed(
      stageConfig(file, 'rds-snapshot-copy', 'dev'),
      {
        NIGHTSHIFT_STAGE: 'dev',
        LEASE_TABLE: 'nightshift-dev-leases',
        ALLOWED_ACCOUNTS: '',
        PROTECTED_ACCOUNT_PATTERNS: 'prod,production,live',
        SPOKE_EXTERNAL_ID: '',
        TARGET_REGIONS: 'eu-west-1,us-east-1',
        TARGET_KMS_KEYS: '',
        RETENTION_DAYS: '14',
        SOURCE_TAGS: '',
        DRY_RUN: 'false',
        EXTRA: 'x',
      },
      'nightshift-dev-rds-snapshot-copy',
    );

    expect(merged).toMatchObject({
      env: { TARGET_REGIONS: 'eu-west-1,us-east-1', RETENTION_DAYS: '14', EXTRA: 'x' },
    });
    expect('notes' in merged && merged.notes).toEqual([
      'TARGET_REGIONS: serverless.yml has eu-west-1, nightshift-dev-rds-snapshot-copy has eu-west-1,us-east-1: the deployed value applies',
      'TARGET_OPTION_GROUPS: nightshift-dev-rds-snapshot-copy does not set it (deployed from an older version?): serverless.yml\'s "" applies',
      'RETENTION_DAYS: serverless.yml has 7, nightshift-dev-rds-snapshot-copy has 14: the deployed value applies',
      'EXTRA: serverless.yml does not set it, nightshift-dev-rds-snapshot-copy has x: the deployed value applies',
    ]);
  });

  it('refuses a deployed guardrail the function itself would refuse', () => {
    expect(withDeployed(dev, deployed({ DRY_RUN: 'yes' }), name)).toEqual({
      refusal:
        'nightshift-dev-ecs-scheduler has DRY_RUN=yes, which it refuses (expected true or false): it cannot run, and neither may a local run',
    });
    expect(withDeployed(dev, deployed({ PROTECTED_TAGS: 'team' }), name)).toMatchObject({
      refusal: expect.stringMatching(
        /^nightshift-dev-ecs-scheduler has PROTECTED_TAGS=team, which it refuses/,
      ),
    });
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

  it('makes the run a dry run for every spelling of on: true, 1, yes, in any case', () => {
    for (const own of ['true', 'TRUE', 'True', '1', 'yes', 'YES', ' yes ']) {
      const local = localEnvironment(dev, { DRY_RUN: own });

      expect(local.env.DRY_RUN, own).toBe('true');
      expect(local.notes, own).toEqual([
        `your DRY_RUN=${own} applies: every run is a dry run (stage dev has false)`,
      ]);
    }
  });

  it('leaves the stage’s DRY_RUN as it is for every spelling of off: false, 0, no, empty', () => {
    for (const own of ['false', 'False', '0', 'no', 'NO', '']) {
      expect(localEnvironment(dev, { DRY_RUN: own }).env.DRY_RUN, own).toBe('false');
      expect(localEnvironment(prod, { DRY_RUN: own }).env.DRY_RUN, own).toBe('true');
    }
  });

  it('refuses a DRY_RUN it cannot read, naming the value and what it accepts', () => {
    for (const own of ['ture', 'on', '2', 'y']) {
      expect(() => localEnvironment(dev, { DRY_RUN: own }), own).toThrow(
        `DRY_RUN=${own} in your environment is neither on (true, 1, yes) nor off (false, 0, no, empty)`,
      );
    }
  });

  it('applies the operator’s DRY_RUN also when the stage does not declare one', () => {
    const bare = { ...dev, env: { PROTECTED_TAGS: '' } };

    expect(localEnvironment(bare, { DRY_RUN: '1' }).env.DRY_RUN).toBe('true');
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
      'NIGHTSHIFT_STAGE=prod, LEASE_TABLE=nightshift-prod-leases, ALLOWED_ACCOUNTS="", PROTECTED_ACCOUNT_PATTERNS=prod,production,live, SPOKE_EXTERNAL_ID="", PROTECTED_TAGS="" (the built-in prod/production/live rules), DRY_RUN=true, SCHEDULE_GRACE_MINUTES=15, OVERRIDE_MAX_HOURS=24, ENVIRONMENT_START_TIMEOUT_MINUTES=30',
    );
  });
});
