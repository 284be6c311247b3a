/**
 * Invariants of the packaged template: every function is bundled, has its own role, and that role
 * allows exactly what its code sends, with mutations scoped to resources or guarded by conditions;
 * the kill switch and the per-function rule and schedule switches work; the alarms and the dashboard
 * read the metrics withOps really writes. The template is built offline by `osls package` and must
 * pass cfn-lint with no errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withOps } from '#shared/handler.ts';
import { parseEnv } from '#shared/env.ts';
import { RotationConfig } from '#functions/instance-rotation/config.ts';
import { FUNCTION_DIMENSIONS, METRICS_NAMESPACE, OUTCOME_METRICS, RUNS_METRIC } from '#shared/metrics.ts';
import { buildReport } from '#shared/report.ts';
import { lambdaContext } from '#test/support/context.ts';
import {
  authorize,
  evaluate,
  resolveStatements,
  type IamRequest,
  type IamStatement,
  type Pseudo,
} from '#test/support/iam-eval.ts';
import { evaluateTrust, type TrustStatement } from '#test/support/iam-eval.ts';
import { HUB_ONLY_SERVICES } from '#shared/iam/run.ts';
import { REGION_TAG, SESSION_REGION } from '#shared/iam/policy.ts';
import { PERMISSIONS, SPOKE_FILE, staleFiles } from '#scripts/iam.ts';
import { LAG_METRIC, recordLag } from '#functions/rds-snapshot-copy/metrics.ts';
import { planCopies } from '#functions/rds-snapshot-copy/plan.ts';
import type { Snapshot } from '#functions/rds-snapshot-copy/inventory.ts';
import aslValidator from 'asl-validator';
import { FleetExecutionInput } from '#events/fleet/schema.ts';
import { templateDefinition } from '#shared/fleet/definition.ts';
import { emitFleetMetrics, FLEET_TARGETS_FAILED_METRIC } from '#shared/fleet/finish.ts';
import { FLEET_FUNCTIONS } from '#shared/fleet/target.ts';
import { toolCommand } from '#scripts/tools.ts';

const FUNCTIONS = readdirSync('functions').filter((name) =>
  existsSync(join('functions', name, 'handler.ts')),
);
const SDK_PREFIX: Record<string, string> = {
  'client-ecs': 'ecs',
  'client-application-auto-scaling': 'application-autoscaling',
  'client-auto-scaling': 'autoscaling',
  'client-rds': 'rds',
  'client-ec2': 'ec2',
  'client-ssm': 'ssm',
  'client-cloudwatch': 'cloudwatch',
  'client-dynamodb': 'dynamodb',
  // ecs-scheduler's scheduled-task warnings (scheduled-tasks.ts).
  'client-eventbridge': 'events',
  'client-scheduler': 'scheduler',
  // A run with a target (shared/handler.ts, shared/fleet/): the spoke role, the allowlist, the kill switch.
  'client-sts': 'sts',
  'client-iam': 'iam',
  'client-organizations': 'organizations',
  'client-lambda': 'lambda',
  // The hub's fleet function: the run's summary.
  'client-sns': 'sns',
};
// Shared modules every function runs through withOps: their calls are every function's calls (the
// modules each function imports are followed from its files too: sharedModulesOf).
const SHARED_CALLERS = ['shared/lease.ts', 'shared/carryover.ts', 'shared/handler.ts'];
// Functions that do not run through withOps, and the shared modules whose calls are theirs.
const OWN_CALLERS: Record<string, string[]> = {
  fleet: [
    'shared/fleet/results.ts',
    'shared/fleet/targets.ts',
    'shared/fleet/finish.ts',
    'shared/summary.ts',
  ],
};
// Hub-only functions that report no resources (their runs are not counted under the outcome metrics).
const HUB_ONLY = ['fleet'];
// The functions a fleet runs in its targets: each has a spoke role (the hub's fleet function has none).
const SPOKED = FUNCTIONS.filter((name) => !HUB_ONLY.includes(name));
// What a run with a target asks of the hub role (shared/handler.ts): its spoke role (the AWS SDK's
// credential provider sends AssumeRole with the nightshift-region session tag), the allowlist's alias and
// Organizations name, and its own reserved concurrency (the kill switch, checked before any change).
const FLEET_CALLS = [
  'sts:AssumeRole',
  'sts:TagSession',
  'iam:ListAccountAliases',
  'organizations:DescribeAccount',
  'lambda:GetFunctionConcurrency',
];
// The spoke template (infra/spoke.yml) as a StackSet deploys it, with the parameters of the hub's stage.
type SpokeTemplate = {
  AWSTemplateFormatVersion: string;
  Parameters: Record<string, unknown>;
  Resources: Record<string, Resource>;
  Transform?: unknown;
};
const SPOKE_TEMPLATE = parse(readFileSync(SPOKE_FILE, 'utf8')) as SpokeTemplate;
const HUB_ACCOUNT = '123456789012';
const MEMBER_ACCOUNT = '210987654321';
const SPOKE_PARAMETERS = { HubAccountId: HUB_ACCOUNT, ExternalId: 'nightshift-ext-7f3a', Stage: 'dev' };
const SESSION_TAG_KEY = `aws:PrincipalTag/${REGION_TAG}`;
const spokeRole = (name: string) =>
  Object.values(SPOKE_TEMPLATE.Resources).find(
    (r) =>
      JSON.stringify(r.Properties.RoleName) ===
      JSON.stringify({ 'Fn::Sub': `nightshift-\${Stage}-${name}-spoke` }),
  );
const spokePolicyStatements = (name: string): IamStatement[] =>
  (spokeRole(name)?.Properties.Policies as { PolicyDocument: { Statement: IamStatement[] } }[]).flatMap(
    (p) => p.PolicyDocument.Statement,
  );
// Alarm restarts record their time before sending, so a retry would only meet the cooldown.
const NO_RETRIES = ['ssm-restart'];
// Must run one at a time: reserved concurrency 1 (0 with the kill switch on).
const SERIAL = ['ecs-scheduler', 'instance-rotation', 'rds-scheduler'];
// The stage params that turn each function's schedules and event rules on and off, and what they switch.
const SWITCHES: Record<string, { fn: string; resources: string[] }> = {
  ecsSchedulesState: { fn: 'ecs-scheduler', resources: ['EcsStopSchedule', 'EcsStartSchedule'] },
  ecsReconcileState: { fn: 'ecs-scheduler', resources: ['EcsReconcileSchedule'] },
  copySchedulesState: { fn: 'rds-snapshot-copy', resources: ['RdsSnapshotCopySweepSchedule'] },
  copyRulesState: { fn: 'rds-snapshot-copy', resources: ['RdsSnapshotCreatedRule'] },
  snapshotSchedulesState: { fn: 'snapshot-tags', resources: ['SnapshotSweepSchedule'] },
  snapshotRulesState: {
    fn: 'snapshot-tags',
    resources: [
      'SnapshotTagsRdsSnapshotRule',
      'SnapshotTagsRdsClusterSnapshotRule',
      'SnapshotTagsEbsSnapshotRule',
    ],
  },
  rotationSchedulesState: { fn: 'instance-rotation', resources: ['InstanceRotationSchedule'] },
  restartRulesState: { fn: 'ssm-restart', resources: ['SsmRestartAlarmRule'] },
  rdsReconcileState: { fn: 'rds-scheduler', resources: ['RdsReconcileSchedule'] },
  rdsRulesState: { fn: 'rds-scheduler', resources: ['RdsRestartedRule'] },
};
const TOPIC = { Ref: 'OpsTopic' };
const FLEET_PARAMS = {
  fleet: 'true',
  allowedAccounts: '111111111111,222222222222',
  fleetRegions: 'eu-central-1',
};
// Calls the SDK makes whose IAM action differs from the command name.
const ACTION_ALIASES: Record<string, string> = {};

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type Resource = { Type: string; Condition?: string; Properties: Record<string, unknown> };
type Template = { Resources: Record<string, Resource> };
type EmfRecord = Record<string, unknown> & {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
};
type Alarm = {
  AlarmName: string;
  Namespace: string;
  MetricName: string;
  Dimensions: { Name: string; Value: unknown }[];
  TreatMissingData: string;
  AlarmActions: unknown[];
};

/** cfn-lint from PATH or the project's cache (the meta setup, test/support/setup-cfn-lint.ts, put it there). */
const cfnLint = () => toolCommand('cfn-lint') ?? 'cfn-lint';
const logicalId = (name: string) =>
  `${name.replace(/-/g, 'Dash').replace(/^./, (c) => c.toUpperCase())}LambdaFunction`;
const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);

/**
 * The shared modules `files` import, directly or through each other (`#shared/…` and relative imports),
 * so a call a function makes through shared code (shared/silence.ts, shared/fleet/…) is its call too.
 */
const sharedModulesOf = (files: string[]): string[] => {
  const seen = new Set<string>();
  const todo = [...files];
  while (todo.length > 0) {
    const file = todo.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    // Static imports and dynamic ones (`await import('./fleet/access.ts')`: split into a chunk, still its code).
    const imports = /(?:from\s+|import\(\s*)'((?:\.{1,2}\/|#shared\/)[^']+\.ts)'/g;
    for (const m of readFileSync(file, 'utf8').matchAll(imports)) {
      const spec = m[1] ?? '';
      const path = spec.startsWith('#shared/') ? join('shared', spec.slice(8)) : join(dirname(file), spec);
      if (path.startsWith('shared/') && existsSync(path)) todo.push(path);
    }
  }
  return [...seen].filter((f) => f.startsWith('shared/'));
};

/** Every AWS API call a function's code makes, as IAM actions, read from its SDK imports. */
const actionsSentBy = (name: string): string[] => {
  const dir = join('functions', name);
  const actions = new Set<string>();
  const own = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
  // A function outside withOps lists the shared modules whose calls are its own; the others follow imports.
  const owned = OWN_CALLERS[name];
  const files = owned
    ? [...own, ...owned]
    : [...new Set([...own, ...sharedModulesOf([...own, ...SHARED_CALLERS])])];
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/import\s*{([^}]*)}\s*from\s*'@aws-sdk\/([a-z0-9-]+)'/g)) {
      const prefix = SDK_PREFIX[match[2] ?? ''];
      if (!prefix) continue;
      for (const raw of (match[1] ?? '').split(',')) {
        const id = raw.replace(/^\s*type\s+/, '').trim();
        const command = id.match(/^(\w+)Command$/)?.[1] ?? id.match(/^paginate(\w+)$/)?.[1];
        // GetCallerIdentity needs no permission and cannot be denied (STS API reference).
        if (command && `${prefix}:${command}` !== 'sts:GetCallerIdentity')
          actions.add(ACTION_ALIASES[`${prefix}:${command}`] ?? `${prefix}:${command}`);
      }
    }
  }
  return [...actions].sort();
};

/** Packages `stage` with `--param` overrides into .serverless-test/<name>. */
const packageStage = (stage: string, params: Record<string, string> = {}, name = stage): Template => {
  const dir = `.serverless-test/${name}`;
  rmSync(dir, { recursive: true, force: true });
  const paramArgs = Object.entries(params).map(([key, value]) => `--param=${key}=${value}`);
  const run = spawnSync('npx', ['osls', 'package', '--stage', stage, '--package', dir, ...paramArgs], {
    encoding: 'utf8',
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' },
  });
  if (run.status !== 0) throw new Error(`osls package failed: ${run.stdout}\n${run.stderr}`);
  return JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
};

const rolePolicyStatements = (template: Template, name: string): Statement[] => {
  const fn = template.Resources[logicalId(name)]?.Properties as { Role: { 'Fn::GetAtt': [string, string] } };
  const role = template.Resources[fn.Role['Fn::GetAtt'][0]]?.Properties;
  // Statements under Fn::If (optional KMS grants) have no Action at this level.
  return (role?.Policies as { PolicyDocument: { Statement: Statement[] } }[])
    .flatMap((p) => p.PolicyDocument.Statement)
    .filter((s) => s.Action !== undefined);
};
const roleOf = (template: Template, name: string) =>
  (template.Resources[logicalId(name)]?.Properties as { Role: { 'Fn::GetAtt': [string, string] } }).Role[
    'Fn::GetAtt'
  ][0];
const resourcesOfType = (template: Template, type: string) =>
  Object.entries(template.Resources).filter(([, r]) => r.Type === type);
const alarms = (template: Template) =>
  resourcesOfType(template, 'AWS::CloudWatch::Alarm').map(([id, r]) => ({ id, ...(r.Properties as Alarm) }));
const functionEnv = (template: Template, name: string) =>
  (template.Resources[logicalId(name)]?.Properties.Environment as { Variables: Record<string, unknown> })
    .Variables;

describe('serverless.yml and infra/', () => {
  let dev: Template;
  let prod: Template;
  // prod with the kill switch on and an alert address: what `--param="killSwitch=true"` deploys.
  let killed: Template;
  // Every schedule and rule switch set to its own name, so each State shows the param it reads.
  let switches: Template;
  // A fleet hub (infra/fleet.yml): fleet on, with the allowlist packaging requires.
  let hub: Template;

  beforeAll(() => {
    expect(
      FUNCTIONS.every((name) => existsSync(`dist/${name}/index.mjs`)),
      'run npm run build first',
    ).toBe(true);
    dev = packageStage('dev');
    prod = packageStage('prod');
    killed = packageStage('prod', { killSwitch: 'true', alertEmail: 'ops@example.com' }, 'prod-killed');
    switches = packageStage(
      'dev',
      Object.fromEntries(Object.keys(SWITCHES).map((param) => [param, param])),
      'dev-switches',
    );
    hub = packageStage('dev', FLEET_PARAMS, 'dev-fleet');
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it.each(['dev', 'prod', 'prod-killed', 'dev-fleet'])(
    'packages the %s stage into a template cfn-lint accepts with no errors',
    (stage) => {
      // W3005 is the DependsOn osls itself writes next to the role reference.
      const lint = spawnSync(
        cfnLint(),
        [
          '--ignore-checks',
          'W3005',
          '--',
          `.serverless-test/${stage}/cloudformation-template-update-stack.json`,
        ],
        { encoding: 'utf8' },
      );
      expect(lint.error, 'cfn-lint must be installed').toBeUndefined();
      expect(lint.stdout + lint.stderr).toBe('');
      expect(lint.status).toBe(0);
    },
  );

  it.each(FUNCTIONS)('deploys %s from its own bundle on nodejs22.x arm64', (name) => {
    const fn = dev.Resources[logicalId(name)]?.Properties;
    expect(fn).toMatchObject({
      Handler: `dist/${name}/index.handler`,
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
    });
    const zip = spawnSync('unzip', ['-Z1', `.serverless-test/dev/${name}.zip`], { encoding: 'utf8' });
    // Its entry and the chunks it imports on demand (scripts/build.ts), nothing of another function.
    const files = zip.stdout.trim().split('\n');
    expect(files).toContain(`dist/${name}/index.mjs`);
    expect(
      files.filter((f) => f !== `dist/${name}/index.mjs`).every((f) => f.startsWith(`dist/${name}/chunks/`)),
    ).toBe(true);
  });

  it.each(FUNCTIONS)('gives %s its own role that allows every call its code sends', (name) => {
    const fn = dev.Resources[logicalId(name)]?.Properties as { Role: { 'Fn::GetAtt': [string, string] } };
    const roleId = fn.Role['Fn::GetAtt'][0];
    const others = FUNCTIONS.filter((n) => n !== name).map(
      (n) => (dev.Resources[logicalId(n)]?.Properties as typeof fn).Role['Fn::GetAtt'][0],
    );
    expect(others).not.toContain(roleId);
    const policies = dev.Resources[roleId]?.Properties.Policies as {
      PolicyDocument: { Statement: Statement[] };
    }[];
    const statements = policies.flatMap((p) => p.PolicyDocument.Statement);
    const allowed = new Set(statements.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)));
    const sent = actionsSentBy(name);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.filter((action) => !allowed.has(action))).toEqual([]);
  });

  it.each(FUNCTIONS)('scopes every mutating permission of %s to resources or conditions', (name) => {
    const fn = dev.Resources[logicalId(name)]?.Properties as { Role: { 'Fn::GetAtt': [string, string] } };
    const role = dev.Resources[fn.Role['Fn::GetAtt'][0]]?.Properties;
    const statements = (role?.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
      (p) => p.PolicyDocument.Statement,
    );
    for (const s of statements.filter((st) => st.Effect === 'Allow')) {
      for (const action of list(s.Action)) {
        expect(action, 'no wildcard actions').not.toMatch(/\*/);
        const readOnly = /:(Describe|List|Get)/.test(action);
        if (s.Resource === '*' && !readOnly)
          expect(s.Condition, `${action} on * needs a condition`).toBeDefined();
      }
    }
  });

  it('lints infra/spoke.yml, the spoke template, with no errors and no warnings', () => {
    const lint = spawnSync(cfnLint(), ['--', SPOKE_FILE], { encoding: 'utf8' });
    expect(lint.error, 'cfn-lint must be installed').toBeUndefined();
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  });

  it('has the generated roles and spoke template checked in as scripts/iam.ts writes them', () => {
    expect(
      staleFiles(),
      'generated IAM files differ from functions/*/permissions.ts: run npm run iam',
    ).toEqual([]);
  });

  it('makes the spoke template deployable by a service-managed StackSet: exactly HubAccountId, ExternalId and Stage, no transform, one named role per function', () => {
    expect(Object.keys(SPOKE_TEMPLATE.Parameters).sort()).toEqual(['ExternalId', 'HubAccountId', 'Stage']);
    expect(SPOKE_TEMPLATE.Transform).toBeUndefined();
    expect(Object.values(SPOKE_TEMPLATE.Resources).map((r) => r.Type)).toEqual(
      SPOKED.map(() => 'AWS::IAM::Role'),
    );
    for (const name of SPOKED) expect(spokeRole(name), name).toBeDefined();
    expect(Object.keys(PERMISSIONS).sort()).toEqual([...SPOKED].sort());
    // `${…}` not resolved per stack would reach IAM as text: only the three parameters and pseudo
    // parameters in Fn::Sub, and the session-region policy variable (escaped as ${!…} in Fn::Sub)
    const text = readFileSync(SPOKE_FILE, 'utf8');
    for (const [whole] of text.matchAll(/\$\{[^}]*\}/g))
      expect(
        [
          '${AWS::Partition}',
          '${AWS::AccountId}',
          '${HubAccountId}',
          '${Stage}',
          '${!aws:PrincipalTag/nightshift-region}',
          '${aws:PrincipalTag/nightshift-region}',
        ],
        whole,
      ).toContain(whole);
  });

  it.each(SPOKED)(
    'names the hub role of %s nightshift-<stage>-<function> and lets it assume its own spoke role, read the allowlist facts and its own kill switch, nothing more',
    (name) => {
      for (const [template, stage] of [
        [dev, 'dev'],
        [prod, 'prod'],
      ] as const)
        expect(template.Resources[roleOf(template, name)]?.Properties.RoleName).toBe(
          `nightshift-${stage}-${name}`,
        );
      const statements = rolePolicyStatements(dev, name) as IamStatement[];
      const allowed = new Set(statements.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)));
      expect(FLEET_CALLS.filter((a) => !allowed.has(a))).toEqual([]);
      const pseudo = { partition: 'aws', region: 'eu-central-1', account: HUB_ACCOUNT };
      const may = (action: string, resource: string, context: Record<string, string | string[]> = {}) =>
        evaluate(statements, { action, resource, context }, pseudo).allowed;
      const other = FUNCTIONS.find((n) => n !== name) ?? '';
      const spoke = (account: string, stage: string, fn: string) =>
        `arn:aws:iam::${account}:role/nightshift-${stage}-${fn}-spoke`;

      for (const action of ['sts:AssumeRole', 'sts:TagSession']) {
        expect(may(action, spoke(MEMBER_ACCOUNT, 'dev', name)), action).toBe(true);
        expect(may(action, spoke(HUB_ACCOUNT, 'dev', name)), `${action} in its own account`).toBe(true);
        expect(may(action, spoke(MEMBER_ACCOUNT, 'dev', other)), `${action} ${other}`).toBe(false);
        expect(may(action, spoke(MEMBER_ACCOUNT, 'prod', name)), `${action} prod`).toBe(false);
        expect(may(action, `arn:aws:iam::${MEMBER_ACCOUNT}:role/OrganizationAccountAccessRole`)).toBe(false);
      }
      expect(may('iam:ListAccountAliases', '*')).toBe(true);
      expect(
        may(
          'organizations:DescribeAccount',
          `arn:aws:organizations::${HUB_ACCOUNT}:account/o-a1b2c3d4e5/${MEMBER_ACCOUNT}`,
        ),
      ).toBe(true);
      const fn = (n: string) => `arn:aws:lambda:eu-central-1:${HUB_ACCOUNT}:function:nightshift-dev-${n}`;
      expect(may('lambda:GetFunctionConcurrency', fn(name))).toBe(true);
      expect(may('lambda:GetFunctionConcurrency', fn(other))).toBe(false);
      for (const action of [
        'lambda:PutFunctionConcurrency',
        'lambda:DeleteFunctionConcurrency',
        'lambda:InvokeFunction',
      ])
        expect(may(action, fn(name)), action).toBe(false);
      for (const action of [
        'iam:CreateAccountAlias',
        'organizations:ListAccounts',
        'sts:AssumeRoleWithWebIdentity',
      ])
        expect(may(action, '*'), action).toBe(false);
    },
  );

  it.each(SPOKED)(
    'gives %s a spoke role that allows every call its code sends to the account it acts on, and the alias read of the allowlist',
    (name) => {
      const statements = spokePolicyStatements(name);
      const allowed = new Set(statements.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action)));
      const sent = actionsSentBy(name).filter((a) => !HUB_ONLY_SERVICES.includes(a.split(':')[0] ?? ''));
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.filter((action) => !allowed.has(action))).toEqual([]);
      expect(allowed.has('iam:ListAccountAliases')).toBe(true);
      // Nothing of the hub's own: logs, queue, topic, lease table, STS, Organizations, Lambda
      expect([...allowed].filter((a) => HUB_ONLY_SERVICES.includes(a.split(':')[0] ?? ''))).toEqual([]);
    },
  );

  it.each(SPOKED)(
    'defines the spoke role of %s from the same statements as its hub role (one definition), without the hub-only ones',
    (name) => {
      const hub = rolePolicyStatements(dev, name) as IamStatement[];
      const spoke = spokePolicyStatements(name);
      const hubOnly = (s: IamStatement) =>
        list(s.Action).every((a) => HUB_ONLY_SERVICES.includes(a.split(':')[0] ?? ''));
      const estate = hub.filter((s) => !hubOnly(s));
      expect(
        spoke
          .map((s) => s.Sid)
          .filter((sid) => sid !== 'DenyWithoutSessionRegion')
          .sort(),
      ).toEqual(estate.map((s) => s.Sid).sort());
      for (const s of spoke.filter((st) => st.Sid !== 'DenyWithoutSessionRegion')) {
        const twin = estate.find((h) => h.Sid === s.Sid);
        expect({ Effect: s.Effect, Action: s.Action }, s.Sid).toEqual({
          Effect: twin?.Effect,
          Action: twin?.Action,
        });
      }
    },
  );

  it.each(SPOKED)(
    'scopes every mutating permission of the spoke role of %s, and pins every regional one to the region of the session',
    (name) => {
      const statements = spokePolicyStatements(name);
      // Statements that act outside the run's region by design: rds-snapshot-copy's destinations, and IAM
      // (global: its aws:RequestedRegion is us-east-1, never the target's).
      const everyRegion =
        name === 'rds-snapshot-copy'
          ? [
              'ReadSnapshots',
              'CopySnapshots',
              'CopyIntoOptionGroups',
              'InheritTagsOnCopies',
              'PruneOwnCopies',
              'PruneLegacyCopies',
            ]
          : [];
      for (const s of statements.filter((st) => st.Effect === 'Allow')) {
        for (const action of list(s.Action)) {
          expect(action, 'no wildcard actions').not.toMatch(/\*/);
          const readOnly = /:(Describe|List|Get)/.test(action);
          if (s.Resource === '*' && !readOnly)
            expect(s.Condition, `${action} on * needs a condition`).toBeDefined();
        }
        const region = (s.Condition?.StringEquals as Record<string, unknown> | undefined)?.[
          'aws:RequestedRegion'
        ];
        if (s.Sid === 'ReadAccountAlias' || everyRegion.includes(s.Sid ?? ''))
          expect(region, s.Sid).toBeUndefined();
        else expect(region, s.Sid).toBe(SESSION_REGION);
      }
      expect(statements[0]).toEqual({
        Sid: 'DenyWithoutSessionRegion',
        Effect: 'Deny',
        Action: '*',
        Resource: '*',
        Condition: { Null: { [SESSION_TAG_KEY]: 'true' } },
      });
    },
  );

  it.each(SPOKED)(
    'lets only the hub role of %s, of the same stage and hub account, assume its spoke role, with the external id, tagging nothing but the region',
    (name) => {
      const trust = (spokeRole(name)?.Properties.AssumeRolePolicyDocument as { Statement: TrustStatement[] })
        .Statement;
      const pseudo = {
        partition: 'aws',
        region: 'eu-central-1',
        account: MEMBER_ACCOUNT,
        parameters: SPOKE_PARAMETERS,
      };
      const hubRole = `arn:aws:iam::${HUB_ACCOUNT}:role/nightshift-dev-${name}`;
      const assume = (principal: string, context: Record<string, string | string[]>) =>
        evaluateTrust(trust, { principal, action: 'sts:AssumeRole', context }, pseudo).allowed;
      const tag = (principal: string, tags: Record<string, string>) =>
        evaluateTrust(
          trust,
          {
            principal,
            action: 'sts:TagSession',
            context: {
              'aws:TagKeys': Object.keys(tags),
              ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
            },
          },
          pseudo,
        ).allowed;
      const withId = { 'sts:ExternalId': SPOKE_PARAMETERS.ExternalId };

      expect(assume(hubRole, withId)).toBe(true);
      expect(tag(hubRole, { [REGION_TAG]: 'eu-west-1' })).toBe(true);
      // Without the external id, or with another
      expect(assume(hubRole, {})).toBe(false);
      expect(assume(hubRole, { 'sts:ExternalId': 'nightshift-ext-0000' })).toBe(false);
      // Any other principal, with the external id
      const other = FUNCTIONS.find((n) => n !== name) ?? '';
      for (const principal of [
        `arn:aws:iam::${HUB_ACCOUNT}:role/nightshift-dev-${other}`,
        `arn:aws:iam::${HUB_ACCOUNT}:role/nightshift-prod-${name}`,
        `arn:aws:iam::${HUB_ACCOUNT}:role/OrganizationAccountAccessRole`,
        `arn:aws:iam::${MEMBER_ACCOUNT}:role/nightshift-dev-${name}`,
        `arn:aws:iam::999999999999:role/nightshift-dev-${name}`,
        'lambda.amazonaws.com',
      ]) {
        expect(assume(principal, withId), principal).toBe(false);
        expect(tag(principal, { [REGION_TAG]: 'eu-west-1' }), principal).toBe(false);
      }
      // Session tags: the region only
      expect(tag(hubRole, { [REGION_TAG]: 'eu-west-1', team: 'shop' })).toBe(false);
      expect(tag(hubRole, { team: 'shop' })).toBe(false);
      expect(tag(hubRole, {})).toBe(false);
    },
  );

  it('acts through a spoke session only in the region the session is tagged with, and not at all without the tag', () => {
    const pseudo = {
      partition: 'aws',
      region: 'eu-central-1',
      account: MEMBER_ACCOUNT,
      parameters: SPOKE_PARAMETERS,
    };
    const may = (
      name: string,
      action: string,
      resource: string,
      context: Record<string, string | string[]>,
    ) => evaluate(spokePolicyStatements(name), { action, resource, context }, pseudo).allowed;
    const service = (region: string) => `arn:aws:ecs:${region}:${MEMBER_ACCOUNT}:service/stage/web`;
    const session = (tagged: string, requested: string) => ({
      [SESSION_TAG_KEY]: tagged,
      'aws:RequestedRegion': requested,
    });

    expect(
      may('ecs-scheduler', 'ecs:UpdateService', service('eu-west-1'), session('eu-west-1', 'eu-west-1')),
    ).toBe(true);
    expect(
      may('ecs-scheduler', 'ecs:UpdateService', service('us-east-1'), session('eu-west-1', 'us-east-1')),
    ).toBe(false);
    expect(may('ecs-scheduler', 'ecs:ListClusters', '*', session('eu-west-1', 'us-east-1'))).toBe(false);
    // IAM is global: the alias read is allowed whatever the requested region
    expect(may('ecs-scheduler', 'iam:ListAccountAliases', '*', session('eu-west-1', 'us-east-1'))).toBe(true);
    // The production denies hold in the spoke too
    expect(
      may('ecs-scheduler', 'ecs:UpdateService', service('eu-west-1'), {
        ...session('eu-west-1', 'eu-west-1'),
        'aws:ResourceTag/env': 'Production',
      }),
    ).toBe(false);
    // Without the session tag, nothing at all
    for (const name of SPOKED)
      for (const action of ['iam:ListAccountAliases', 'ecs:ListClusters', 'ecs:UpdateService'])
        expect(
          evaluate(
            spokePolicyStatements(name),
            { action, resource: service('eu-west-1'), context: { 'aws:RequestedRegion': 'eu-west-1' } },
            pseudo,
          ),
        ).toEqual({ allowed: false, by: 'DenyWithoutSessionRegion' });
  });

  it('keeps the fixed stop and start crons (in a time zone, with retries and a dead-letter queue) off, reconcile replacing them', () => {
    // They would stop at 19:00 a cluster someone woke until 22:00, and start it on a holiday.
    for (const id of ['EcsStopSchedule', 'EcsStartSchedule']) {
      const schedule = dev.Resources[id]?.Properties as Record<string, never>;
      expect(schedule).toMatchObject({ ScheduleExpressionTimezone: 'Europe/Berlin', State: 'DISABLED' });
      expect(schedule.Target).toMatchObject({
        RetryPolicy: { MaximumRetryAttempts: 3 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['OnFailureQueue', 'Arn'] } },
      });
      expect(prod.Resources[id]?.Properties.State).toBe('DISABLED');
    }
    expect(dev.Resources.EcsStopSchedule?.Properties.ScheduleExpression).toBe('cron(0 19 ? * MON-FRI *)');
    expect(dev.Resources.EcsStartSchedule?.Properties.ScheduleExpression).toBe('cron(0 7 ? * MON-FRI *)');
  });

  it('reconciles ECS every 10 minutes with the schedules built into the bundle, off in prod', () => {
    const schedule = dev.Resources.EcsReconcileSchedule?.Properties as Record<string, never>;
    expect(schedule).toMatchObject({ ScheduleExpression: 'cron(0/10 * * * ? *)', State: 'ENABLED' });
    expect(schedule.Target).toMatchObject({
      Input: '{"action":"reconcile"}',
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['OnFailureQueue', 'Arn'] } },
    });
    expect(prod.Resources.EcsReconcileSchedule?.Properties.State).toBe('DISABLED');
    // The deployed function never reads infra/schedules.yml: the build embedded the parsed document.
    const bundle = readFileSync('dist/ecs-scheduler/index.mjs', 'utf8');
    expect(bundle.includes('"office-hours":{timezone:"Europe/Berlin"'), 'schedules embedded').toBe(true);
    expect(bundle.includes('../../infra/schedules.yml'), 'no read of the file').toBe(false);
  });

  it('gives instance-rotation the schedule it runs on, so it knows its windows, and a config it accepts', () => {
    for (const template of [dev, prod, switches]) {
      const schedule = template.Resources.InstanceRotationSchedule?.Properties as Record<string, unknown>;
      const env = functionEnv(template, 'instance-rotation');
      expect(env.ROTATION_SCHEDULE).toBe(schedule.ScheduleExpression);
      expect(env.SCHEDULE_TIMEZONE).toBe(schedule.ScheduleExpressionTimezone);
      expect(env.ROTATION_SCHEDULE_STATE).toBe(schedule.State);
    }
    const env = functionEnv(dev, 'instance-rotation');
    expect(env).toMatchObject({
      ROTATION_SCHEDULE: 'cron(0/10 1-5 ? * MON-FRI *)',
      SCHEDULE_TIMEZONE: 'Europe/Berlin',
      ABANDON_BACKOFF: '24h',
    });
    const config = parseEnv(RotationConfig, env as Record<string, string>);
    expect(config.schedule.expression).toBe('cron(0/10 1-5 ? * MON-FRI *)');
    // The role may write and remove only its own two tags
    const tagging = rolePolicyStatements(dev, 'instance-rotation').filter((st) =>
      list(st.Action).some((a) => /Tags$/.test(a)),
    );
    for (const st of tagging) {
      const keys = (st.Condition as Record<string, Record<string, string[]>>)['ForAllValues:StringEquals']?.[
        'aws:TagKeys'
      ];
      expect(keys?.length).toBeGreaterThan(0);
      for (const key of keys ?? [])
        expect(['nightshift:rotation', 'nightshift:rotation-abandoned']).toContain(key);
    }
  });

  describe('instance-rotation: the role tags only groups it rotates, and only with its own keys', () => {
    const pseudo = { partition: 'aws', region: 'eu-central-1', account: '123456789012' };
    const group = 'arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:1:autoScalingGroupName/web';
    const decide = (action: string, groupTags: Record<string, string>, keys: string[]) =>
      evaluate(
        rolePolicyStatements(dev, 'instance-rotation') as IamStatement[],
        {
          action,
          resource: group,
          context: {
            'aws:TagKeys': keys,
            ...Object.fromEntries(
              Object.entries(groupTags).map(([k, v]) => [`autoscaling:ResourceTag/${k}`, v]),
            ),
          },
        },
        pseudo,
      ).allowed;
    const rotation = { 'nightshift:rotation': 'desired=2 instance=i-0123456789abcdef0 phase=launching' };

    it('may update the state of a rotation in flight on a group that opted out meanwhile (its replacement, a roll-back)', () => {
      expect(decide('autoscaling:CreateOrUpdateTags', rotation, ['nightshift:rotation'])).toBe(true);
      expect(decide('autoscaling:DeleteTags', rotation, ['nightshift:rotation'])).toBe(true);
    });

    it('may not start a rotation on, nor mark as abandoned, nor tag otherwise, a group that did not opt in', () => {
      expect(decide('autoscaling:CreateOrUpdateTags', {}, ['nightshift:rotation'])).toBe(false);
      expect(decide('autoscaling:CreateOrUpdateTags', rotation, ['nightshift:rotation-abandoned'])).toBe(
        false,
      );
      expect(decide('autoscaling:CreateOrUpdateTags', rotation, ['nightshift:rotate'])).toBe(false);
      expect(decide('autoscaling:CreateOrUpdateTags', { 'nightshift:rotate': 'true' }, ['team'])).toBe(false);
      expect(decide('autoscaling:SetDesiredCapacity', {}, [])).toBe(false);
    });
  });

  it('keeps snapshot copies and tags running for real in prod, where ECS schedules are off and dry', () => {
    const env = (t: Template, name: string) =>
      (t.Resources[logicalId(name)]?.Properties.Environment as { Variables: Record<string, string> })
        .Variables;
    for (const id of ['RdsSnapshotCopySweepSchedule', 'SnapshotSweepSchedule']) {
      expect(prod.Resources[id]?.Properties.State).toBe('ENABLED');
    }
    expect(env(prod, 'rds-snapshot-copy').DRY_RUN).toBe('false');
    expect(env(prod, 'snapshot-tags').DRY_RUN).toBe('false');
    expect(env(prod, 'ecs-scheduler').DRY_RUN).toBe('true');
    expect(env(dev, 'ecs-scheduler').DRY_RUN).toBe('false');
  });

  it.each(FUNCTIONS)('sends failed async invocations of %s to the on-failure queue', (name) => {
    const config = Object.values(dev.Resources).find(
      (r) =>
        r.Type === 'AWS::Lambda::EventInvokeConfig' &&
        JSON.stringify(r.Properties.FunctionName).includes(logicalId(name)),
    );
    expect(config?.Properties).toMatchObject({
      MaximumRetryAttempts: NO_RETRIES.includes(name) ? 0 : 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['OnFailureQueue', 'Arn'] } } },
    });
  });
  it.each(FUNCTIONS)(
    'reserves concurrency for %s: 1 for serial functions, a cap of 10 at most for the others',
    (name) => {
      const reserved = dev.Resources[logicalId(name)]?.Properties.ReservedConcurrentExecutions as number;
      if (SERIAL.includes(name)) expect(reserved).toBe(1);
      else expect(reserved >= 1 && reserved <= 10, `${name}: ${reserved}`).toBe(true);
    },
  );

  it('lets a hub run its serial functions once per fleet target at a time, up to fleetMaxConcurrency', () => {
    for (const name of SERIAL)
      expect(hub.Resources[logicalId(name)]?.Properties.ReservedConcurrentExecutions, name).toBe(50);
  });

  it('reserves no concurrency at all for any function with the kill switch on', () => {
    const reserved = FUNCTIONS.map(
      (name) => killed.Resources[logicalId(name)]?.Properties.ReservedConcurrentExecutions,
    );
    expect(reserved).toEqual(FUNCTIONS.map(() => 0));
  });

  it('refuses a kill switch that is neither true nor false', () => {
    expect(() => packageStage('dev', { killSwitch: 'yes' }, 'dev-bad-switch')).toThrow(
      /Cannot resolve variable at "functions\.[a-z-]+\.reservedConcurrency"/,
    );
  });

  it('turns every schedule and rule of every function off with its own stage param', () => {
    const targetOf = (r: Resource) => {
      const target = (r.Properties.Target ?? (r.Properties.Targets as unknown[])[0]) as {
        Arn: { 'Fn::GetAtt': [string, string] };
      };
      return target.Arn['Fn::GetAtt'][0];
    };
    // The fleet schedules (infra/fleet.yml, a hub only) have their own switch: see the fleet tests.
    const switched = [
      ...resourcesOfType(switches, 'AWS::Events::Rule'),
      ...resourcesOfType(switches, 'AWS::Scheduler::Schedule'),
    ].filter(([, r]) => r.Condition !== 'IsFleet');
    expect(switched.map(([id]) => id).sort()).toEqual(
      Object.values(SWITCHES)
        .flatMap((s) => s.resources)
        .sort(),
    );
    for (const [id, resource] of switched) {
      const param = resource.Properties.State as string;
      expect(SWITCHES[param]?.resources, `${id} State`).toContain(id);
      expect(targetOf(resource), `${id} targets the function ${param} is for`).toBe(
        logicalId(SWITCHES[param]?.fn ?? ''),
      );
    }
    for (const [, resource] of [
      ...resourcesOfType(dev, 'AWS::Events::Rule'),
      ...resourcesOfType(dev, 'AWS::Scheduler::Schedule'),
    ])
      expect(['ENABLED', 'DISABLED']).toContain(resource.Properties.State);
  });

  it.each(FUNCTIONS)('lets %s publish run summaries to the ops topic and to nothing else in SNS', (name) => {
    const sns = rolePolicyStatements(dev, name).filter((s) =>
      list(s.Action).some((a) => a.startsWith('sns:')),
    );
    expect(sns).toEqual([
      expect.objectContaining({ Effect: 'Allow', Action: 'sns:Publish', Resource: TOPIC }),
    ]);
    expect(functionEnv(dev, name).SUMMARY_TOPIC_ARN).toEqual(TOPIC);
    expect(functionEnv(dev, name).NIGHTSHIFT_STAGE).toBe('dev');
    expect(functionEnv(prod, name).NIGHTSHIFT_STAGE).toBe('prod');
  });

  it('subscribes the alert address to the ops topic only when one is given', () => {
    const subscriptions = (t: Template) => resourcesOfType(t, 'AWS::SNS::Subscription').map(([, r]) => r);
    const parameter = (t: Template) =>
      (t as unknown as { Parameters: Record<string, { Default: string }> }).Parameters.AlertEmail?.Default;
    expect(subscriptions(killed)).toEqual([
      {
        Type: 'AWS::SNS::Subscription',
        Condition: 'HasAlertEmail',
        Properties: { TopicArn: TOPIC, Protocol: 'email', Endpoint: { Ref: 'AlertEmail' } },
      },
    ]);
    expect(parameter(killed)).toBe('ops@example.com');
    expect(parameter(dev)).toBe('');
  });

  it.each(FUNCTIONS)('alarms on the errors of %s, notifying the ops topic', (name) => {
    const alarm = alarms(dev).find(
      (a) => a.Namespace === 'AWS/Lambda' && JSON.stringify(a.Dimensions).includes(`"${logicalId(name)}"`),
    );
    expect(alarm).toMatchObject({
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(name) } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
      TreatMissingData: 'notBreaching',
      AlarmActions: [TOPIC],
    });
  });

  it('alarms when anything waits in the on-failure queue, notifying the ops topic', () => {
    expect(alarms(dev).filter((a) => a.Namespace === 'AWS/SQS')).toEqual([
      expect.objectContaining({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': ['OnFailureQueue', 'QueueName'] } }],
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        TreatMissingData: 'notBreaching',
        AlarmActions: [TOPIC],
      }),
    ]);
  });

  it.each([
    { stage: 'dev', outcome: 'failed' },
    { stage: 'prod', outcome: 'failed' },
    { stage: 'dev', outcome: 'undone' },
    { stage: 'prod', outcome: 'undone' },
  ] as const)(
    'alarms on $outcome resources of every function in $stage, on the metric withOps really writes',
    async ({ stage, outcome }) => {
      // Prepare: metrics on, as deployed in this stage; stdout captured
      const template = stage === 'dev' ? dev : prod;
      vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
      vi.stubEnv('NIGHTSHIFT_STAGE', String(functionEnv(template, FUNCTIONS[0] ?? '').NIGHTSHIFT_STAGE));
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
        out.push(String(chunk));
        return true;
      }) as typeof process.stdout.write);
      const failing = buildReport('stop', false, [
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
          type: 'ecs-service',
          outcome,
          detail: '',
        },
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/api',
          type: 'ecs-service',
          outcome: 'changed',
          detail: '',
        },
      ]);

      for (const name of FUNCTIONS.filter((n) => !HUB_ONLY.includes(n))) {
        // Act: one run of a function built like this one, with a failed (or undone) resource
        out.length = 0;
        const handler = withOps(
          name,
          (event) => event,
          async () => failing,
        );
        await handler({}, lambdaContext(name));
        const [record] = out
          .join('')
          .split('\n')
          .filter((l) => l.includes('"_aws"'))
          .map((l) => JSON.parse(l) as EmfRecord);

        // Assess: the alarm reads a metric in that record, under one of its dimension sets, with these values
        const matching = alarms(template).filter(
          (a) =>
            a.Namespace === METRICS_NAMESPACE &&
            a.MetricName === outcome &&
            a.Dimensions.some((d) => d.Value === name),
        );
        expect(matching, `${name}: one ${outcome}-resources alarm`).toHaveLength(1);
        const alarm = matching[0] as Alarm;
        expect(alarm).toMatchObject({
          AlarmName: `nightshift-${stage}-${name}-${outcome}`,
          TreatMissingData: 'notBreaching',
          AlarmActions: [TOPIC],
        });
        const directive = record?._aws.CloudWatchMetrics.find((d) => d.Namespace === alarm.Namespace);
        expect(directive?.Metrics.map((m) => m.Name)).toContain(alarm.MetricName);
        expect(directive?.Dimensions).toContainEqual(alarm.Dimensions.map((d) => d.Name));
        expect(alarm.Dimensions.map((d) => d.Name)).toEqual([...FUNCTION_DIMENSIONS]);
        for (const d of alarm.Dimensions) expect(record?.[d.Name], `${name} ${d.Name}`).toBe(d.Value);
        expect(record?.[alarm.MetricName]).toBe(1);
      }
    },
  );

  it.each(['ecs-scheduler', 'rds-scheduler'])(
    'alarms when rows of %s wait for 90 minutes (nine 10-minute periods), on the metric withOps really writes',
    async (name) => {
      // Prepare
      vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
      vi.stubEnv('NIGHTSHIFT_STAGE', 'dev');
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
        out.push(String(chunk));
        return true;
      }) as typeof process.stdout.write);
      const waiting = buildReport('reconcile', false, [
        {
          arn: 'arn:aws:rds:eu-central-1:123456789012:db:shop-db',
          type: 'rds-db-instance',
          outcome: 'waiting',
          detail: '',
        },
      ]);

      // Act
      await withOps(
        name,
        (event) => event,
        async () => waiting,
      )({}, lambdaContext(name));
      const [record] = out
        .join('')
        .split('\n')
        .filter((l) => l.includes('"_aws"'))
        .map((l) => JSON.parse(l) as EmfRecord);

      // Assess
      const alarm = alarms(dev).find(
        (a) => a.MetricName === 'waiting' && a.Dimensions.some((d) => d.Value === name),
      ) as Alarm & Record<string, unknown>;
      expect(alarm).toMatchObject({
        AlarmName: `nightshift-dev-${name}-waiting`,
        Namespace: METRICS_NAMESPACE,
        Statistic: 'Sum',
        Period: 600,
        EvaluationPeriods: 9,
        DatapointsToAlarm: 9,
        TreatMissingData: 'notBreaching',
        AlarmActions: [TOPIC],
      });
      expect(alarm.Dimensions.map((d) => d.Name)).toEqual([...FUNCTION_DIMENSIONS]);
      for (const d of alarm.Dimensions) expect(record?.[d.Name], d.Name).toBe(d.Value);
      expect(record?.waiting).toBe(1);
    },
  );

  it('gives ssm-restart its flap guard limit from the stage param restartMaxPerHour', () => {
    expect(functionEnv(dev, 'ssm-restart')).toMatchObject({
      RESTART_COOLDOWN_MINUTES: '15',
      RESTART_MAX_PER_HOUR: '3',
    });
  });

  it('creates the stage lease table on demand, with TTL, and gives every function it and only it', () => {
    const table = dev.Resources.LeaseTable?.Properties;
    expect(dev.Resources.LeaseTable?.Type).toBe('AWS::DynamoDB::Table');
    expect(table).toMatchObject({
      TableName: 'nightshift-dev-leases',
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'scope', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    });
    for (const name of FUNCTIONS) {
      expect(functionEnv(dev, name).LEASE_TABLE, name).toEqual({ Ref: 'LeaseTable' });
      const onTable = rolePolicyStatements(dev, name).filter((s) =>
        list(s.Action).some((a) => a.startsWith('dynamodb:')),
      );
      expect(onTable, name).toHaveLength(1);
      expect(onTable[0]).toMatchObject({
        Effect: 'Allow',
        Resource: { 'Fn::GetAtt': ['LeaseTable', 'Arn'] },
      });
    }
  });

  it('draws runs, changes and failures of every function, the queue depth and every alarm on a dashboard', () => {
    // Prepare: the body as CloudFormation substitutes it
    const dashboards = resourcesOfType(dev, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const props = dashboards[0]?.[1].Properties as {
      DashboardName: string;
      DashboardBody: { 'Fn::Sub': string };
    };
    const text = props.DashboardBody['Fn::Sub'].replace(
      /\$\{AWS::(\w+)\}/g,
      (_, name: string) =>
        ({ Region: 'eu-central-1', Partition: 'aws', AccountId: '123456789012' })[name] ?? '',
    );

    // Act
    const body = JSON.parse(text) as {
      widgets: { type: string; properties: { title: string; metrics?: unknown[][]; alarms?: string[] } }[];
    };

    // Assess
    expect(props.DashboardName).toBe('nightshift-dev');
    expect(text).not.toContain('${');
    const lines = body.widgets.flatMap((w) => w.properties.metrics ?? []);
    const nightshift = lines.filter((l) => l[0] === METRICS_NAMESPACE);
    for (const metric of [RUNS_METRIC, 'changed', 'failed']) {
      for (const name of FUNCTIONS.filter((n) => !HUB_ONLY.includes(n)))
        expect(nightshift, `${metric} of ${name}`).toContainEqual([
          METRICS_NAMESPACE,
          metric,
          'service',
          name,
          'stage',
          'dev',
        ]);
    }
    for (const line of nightshift) {
      expect([RUNS_METRIC, ...OUTCOME_METRICS]).toContain(line[1]);
      expect([line[2], line[4]]).toEqual([...FUNCTION_DIMENSIONS]);
    }
    const queueName = dev.Resources.OnFailureQueue?.Properties.QueueName;
    expect(lines).toContainEqual(['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', queueName]);
    const alarmArns = body.widgets.flatMap((w) => w.properties.alarms ?? []);
    // The fleet's alarms exist only in a hub (IsFleet): not on the dashboard of every stage.
    expect(alarmArns.sort()).toEqual(
      alarms(dev)
        .filter((a) => dev.Resources[a.id]?.Condition !== 'IsFleet')
        .map((a) => `arn:aws:cloudwatch:eu-central-1:123456789012:alarm:${a.AlarmName}`)
        .sort(),
    );
  });

  it('reconciles RDS every 10 minutes, 5 after ECS, with the schedules built into its bundle; restops auto-started databases; off and dry in prod', () => {
    const schedule = dev.Resources.RdsReconcileSchedule?.Properties as Record<string, never>;
    expect(schedule).toMatchObject({ ScheduleExpression: 'cron(5/10 * * * ? *)', State: 'ENABLED' });
    expect(schedule.Target).toMatchObject({
      Input: '{"action":"reconcile"}',
      DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['OnFailureQueue', 'Arn'] } },
    });
    expect(dev.Resources.RdsRestartedRule?.Properties.EventPattern).toEqual({
      source: ['aws.rds'],
      'detail-type': ['RDS DB Instance Event', 'RDS DB Cluster Event'],
      detail: { EventID: ['RDS-EVENT-0154', 'RDS-EVENT-0088', 'RDS-EVENT-0153', 'RDS-EVENT-0151'] },
    });
    for (const id of ['RdsReconcileSchedule', 'RdsRestartedRule'])
      expect(prod.Resources[id]?.Properties.State, id).toBe('DISABLED');
    expect(functionEnv(prod, 'rds-scheduler').DRY_RUN).toBe('true');
    expect(functionEnv(dev, 'rds-scheduler')).toMatchObject({
      DRY_RUN: 'false',
      SCHEDULE_GRACE_MINUTES: '15',
    });
    const bundle = readFileSync('dist/rds-scheduler/index.mjs', 'utf8');
    expect(bundle.includes('"office-hours":{timezone:"Europe/Berlin"'), 'schedules embedded').toBe(true);
    expect(bundle.includes('../../infra/schedules.yml'), 'no read of the file').toBe(false);
  });

  it('lets ecs-scheduler read the scheduled tasks it warns about (EventBridge rules, Scheduler schedules) and change none', () => {
    const actions = rolePolicyStatements(dev, 'ecs-scheduler')
      .filter((s) => s.Effect === 'Allow')
      .flatMap((s) => list(s.Action));
    expect(actions.filter((a) => /^(events|scheduler):/.test(a)).sort()).toEqual([
      'events:ListRules',
      'events:ListTargetsByRule',
      'scheduler:GetSchedule',
      'scheduler:ListSchedules',
    ]);
  });

  describe('rds-scheduler: the role stops, starts and tags only databases not tagged production, with its own keys', () => {
    const pseudo = { partition: 'aws', region: 'eu-central-1', account: '123456789012' };
    const db = 'arn:aws:rds:eu-central-1:123456789012:db:shop-db';
    const cluster = 'arn:aws:rds:eu-central-1:123456789012:cluster:reports';
    const decide = (action: string, resource: string, tags: Record<string, string>, keys?: string[]) =>
      evaluate(
        rolePolicyStatements(dev, 'rds-scheduler') as IamStatement[],
        {
          action,
          resource,
          context: {
            ...(keys && { 'aws:TagKeys': keys }),
            ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
            ...Object.fromEntries(
              Object.entries(tags).map(([k, v]) => [
                `rds:${resource.includes(':db:') ? 'db' : 'cluster'}-tag/${k}`,
                v,
              ]),
            ),
          },
        },
        pseudo,
      ).allowed;

    it('may stop and start non-production instances and clusters, and write only nightshift:stopped', () => {
      expect(decide('rds:StopDBInstance', db, { team: 'shop' })).toBe(true);
      expect(decide('rds:StartDBCluster', cluster, {})).toBe(true);
      expect(decide('rds:AddTagsToResource', db, {}, ['nightshift:stopped'])).toBe(true);
      expect(decide('rds:RemoveTagsFromResource', cluster, {}, ['nightshift:override'])).toBe(true);
      expect(decide('rds:AddTagsToResource', db, {}, ['team'])).toBe(false);
      expect(decide('rds:DeleteDBInstance', db, {})).toBe(false);
      expect(decide('rds:ModifyDBInstance', db, {})).toBe(false);
    });

    it('records overrides (wake / sleep): may add nightshift:override, and no other key with it', () => {
      expect(decide('rds:AddTagsToResource', db, {}, ['nightshift:override'])).toBe(true);
      expect(decide('rds:AddTagsToResource', cluster, {}, ['nightshift:override'])).toBe(true);
      expect(decide('rds:AddTagsToResource', db, {}, ['nightshift:override', 'team'])).toBe(false);
      expect(decide('rds:AddTagsToResource', db, {})).toBe(false);
      expect(decide('rds:AddTagsToResource', db, { env: 'prod' }, ['nightshift:override'])).toBe(false);
      expect(decide('rds:AddTagsToResource', cluster, { stage: 'Live' }, ['nightshift:override'])).toBe(
        false,
      );
    });

    it.each<Record<string, string>>([{ env: 'Prod' }, { environment: 'production' }, { stage: 'LIVE' }])(
      'refuses every change to a database tagged %o',
      (tags) => {
        for (const resource of [db, cluster]) {
          for (const action of [
            'rds:StopDBInstance',
            'rds:StartDBInstance',
            'rds:StopDBCluster',
            'rds:StartDBCluster',
          ])
            expect(decide(action, resource, tags), `${action} ${resource}`).toBe(false);
          expect(decide('rds:AddTagsToResource', resource, tags, ['nightshift:stopped'])).toBe(false);
        }
      },
    );

    it('reads ECS and Auto Scaling but changes neither', () => {
      const actions = rolePolicyStatements(dev, 'rds-scheduler')
        .filter((s) => s.Effect === 'Allow')
        .flatMap((s) => list(s.Action));
      expect(actions.filter((a) => /^(ecs|autoscaling):/.test(a) && !/:(Describe|List)/.test(a))).toEqual([]);
    });

    it('silences alarms while parked: may disable and enable alarm actions, and tag alarms only with nightshift:silenced', () => {
      const alarm = 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:shop-db-cpu';
      for (const action of [
        'cloudwatch:DescribeAlarms',
        'cloudwatch:ListTagsForResource',
        'cloudwatch:DisableAlarmActions',
        'cloudwatch:EnableAlarmActions',
      ])
        expect(decide(action, alarm, {}), action).toBe(true);
      expect(decide('cloudwatch:TagResource', alarm, {}, ['nightshift:silenced'])).toBe(true);
      expect(decide('cloudwatch:UntagResource', alarm, {}, ['nightshift:silenced'])).toBe(true);
      expect(decide('cloudwatch:TagResource', alarm, {}, ['team'])).toBe(false);
      expect(decide('cloudwatch:TagResource', alarm, {})).toBe(false);
      expect(decide('cloudwatch:PutMetricAlarm', alarm, {})).toBe(false);
      expect(decide('cloudwatch:DeleteAlarms', alarm, {})).toBe(false);
    });

    it('passes ENVIRONMENT_START_TIMEOUT_MINUTES (default 30) from the stage param', () => {
      expect(functionEnv(dev, 'rds-scheduler').ENVIRONMENT_START_TIMEOUT_MINUTES).toBe('30');
    });
  });

  // The same proofs for the hub role (deployed in the source region) and for the spoke role (one session per
  // run, tagged with the region it copies from: the hub passes nightshift-region=<target region>).
  describe.each(['hub', 'spoke'] as const)(
    'rds-snapshot-copy (%s role): the role can never make a snapshot it did not create deletable',
    (kind) => {
      const ACCOUNT = '123456789012';
      // The run copying from eu-central-1 (the source region) into eu-west-1; the same role run from
      // eu-west-1 (the hub stack deployed there, or a spoke session tagged eu-west-1) is B, copying the other way.
      const pseudo: Pseudo = {
        partition: 'aws',
        region: 'eu-central-1',
        account: ACCOUNT,
        ...(kind === 'spoke' && { parameters: { ...SPOKE_PARAMETERS } }),
      };
      const pseudoB: Pseudo = { ...pseudo, region: 'eu-west-1' };
      const foreign = `arn:aws:rds:eu-west-1:${ACCOUNT}:snapshot:reports-keep`;
      const foreignCluster = `arn:aws:rds:eu-west-1:${ACCOUNT}:cluster-snapshot:ledger-keep`;
      const source = `arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:orders-a`;
      const copy = `arn:aws:rds:eu-west-1:${ACCOUNT}:snapshot:orders-a`;
      type RawStatement = IamStatement | { 'Fn::If': unknown[] };
      /** The role's statements as written, Fn::If included (rolePolicyStatements leaves those out). */
      const rawStatements = (): unknown[] => {
        if (kind === 'spoke') return spokePolicyStatements('rds-snapshot-copy');
        const fn = dev.Resources[logicalId('rds-snapshot-copy')]?.Properties as {
          Role: { 'Fn::GetAtt': [string, string] };
        };
        const role = dev.Resources[fn.Role['Fn::GetAtt'][0]]?.Properties;
        return (role?.Policies as { PolicyDocument: { Statement: RawStatement[] } }[]).flatMap(
          (p) => p.PolicyDocument.Statement,
        );
      };
      const statements = (kms = false) => resolveStatements(rawStatements(), { HasCopyKmsKeys: kms });
      // A spoke session carries the region it runs for; the hub role's region is its stack's.
      const asRun = (request: IamRequest, p: Pseudo): IamRequest =>
        kind === 'hub'
          ? request
          : { ...request, context: { ...request.context, [SESSION_TAG_KEY]: p.region } };
      const decide = (request: IamRequest, p: Pseudo = pseudo) =>
        evaluate(statements(), asRun(request, p), p);
      const authorizeRun = (requests: IamRequest[], p: Pseudo = pseudo) =>
        authorize(
          statements(),
          requests.map((r) => asRun(r, p)),
          p,
        );
      // The request context RDS builds for rds:AddTagsToResource (Service Authorization Reference: aws:RequestTag,
      // aws:TagKeys, rds:req-tag, rds:TagsFromRequest), and aws:RequestedRegion, which every request has.
      const tagging = (
        resource: string,
        region: string,
        tags: Record<string, string>,
        fromRequest?: boolean,
      ) => ({
        action: 'rds:AddTagsToResource',
        resource,
        context: {
          'aws:RequestedRegion': region,
          'aws:TagKeys': Object.keys(tags),
          ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
          ...(fromRequest !== undefined && { 'rds:TagsFromRequest': String(fromRequest) }),
        },
      });
      const untagging = (resource: string, region: string, keys?: string[]) => ({
        action: 'rds:RemoveTagsFromResource',
        resource,
        context: { 'aws:RequestedRegion': region, ...(keys && { 'aws:TagKeys': keys }) },
      });
      const marker = { 'nightshift:copy-source': source };
      const legacy = { 'nightshift:source-arn': source };
      const deletion = (resource: string, region: string, tags: Record<string, string>) => ({
        action: resource.includes(':cluster-snapshot:')
          ? 'rds:DeleteDBClusterSnapshot'
          : 'rds:DeleteDBSnapshot',
        resource,
        context: {
          'aws:RequestedRegion': region,
          ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
        },
      });

      it.each([
        ['AddTagsToResource of the marker', tagging(foreign, 'eu-west-1', marker, true)],
        ['the same on a cluster snapshot', tagging(foreignCluster, 'eu-west-1', marker, true)],
        ['the same if RDS sent no rds:TagsFromRequest', tagging(foreign, 'eu-west-1', marker)],
        ['the legacy marker', tagging(foreign, 'eu-west-1', legacy, true)],
        ['a copy with explicit Tags (tag-on-create)', tagging(copy, 'eu-west-1', marker, true)],
        ['any other tag', tagging(foreign, 'eu-west-1', { team: 'shop' }, true)],
      ])('denies tagging in a destination region: %s', (_, request) => {
        expect(decide(request)).toEqual({ allowed: false, by: 'DenyExplicitTagsOutsideSourceRegion' });
      });

      it('denies deleting anything in its own region, where it may mark sources', () => {
        expect(decide(tagging(source, 'eu-central-1', marker, true))).toEqual({
          allowed: true,
          by: 'MarkSources',
        });
        for (const tags of [marker, legacy])
          expect(decide(deletion(source, 'eu-central-1', tags))).toEqual({
            allowed: false,
            by: 'DenyDeleteInSourceRegion',
          });
      });

      it('marks sources in its own region with nightshift:copy-source pointing there, and nothing else', () => {
        expect(decide(tagging(source, 'eu-central-1', { team: 'shop' }, true)).allowed).toBe(false);
        expect(
          decide(tagging(source, 'eu-central-1', { 'nightshift:copy-source': foreign }, true)).allowed,
        ).toBe(false);
        // No statement lets it add the legacy key anywhere, in any case
        expect(decide(tagging(source, 'eu-central-1', legacy, true))).toEqual({
          allowed: false,
          by: 'implicit deny',
        });
        expect(
          decide(tagging(source, 'eu-central-1', { 'Nightshift:Copy-Source': source }, true)).allowed,
        ).toBe(false);
        // ForAllValues holds vacuously for a request without aws:TagKeys: the Null condition refuses it
        expect(
          decide({
            ...tagging(source, 'eu-central-1', marker, true),
            context: { 'aws:RequestedRegion': 'eu-central-1' },
          }).allowed,
        ).toBe(false);
        expect(
          decide(tagging(source, 'eu-central-1', { 'nightshift:source-time': '2026-11-23T03:24:00Z' }, true)),
        ).toEqual({ allowed: true, by: 'MarkSources' });
      });

      it('removes only nightshift keys, only in its own region', () => {
        expect(
          decide(
            untagging(source, 'eu-central-1', [
              'nightshift:copy-source',
              'nightshift:source-time',
              'nightshift:source-arn',
            ]),
          ),
        ).toEqual({ allowed: true, by: 'UnmarkSources' });
        expect(decide(untagging(source, 'eu-central-1', ['nightshift:copy-source', 'team'])).allowed).toBe(
          false,
        );
        expect(decide(untagging(source, 'eu-central-1')).allowed).toBe(false);
        expect(decide(untagging(copy, 'eu-west-1', ['nightshift:copy-source'])).allowed).toBe(false);
      });

      it('copies with CopyTags into a destination region, authorised on the source and on the target, and deletes there only what its marker names', () => {
        // CopyDBSnapshot is authorised on the source (in its region, through the presigned request) and on
        // the target; CopyTags adds an rds:AddTagsToResource of inherited tags on the target.
        const copying = [
          {
            action: 'rds:CopyDBSnapshot',
            resource: source,
            context: { 'aws:RequestedRegion': 'eu-central-1' },
          },
          { action: 'rds:CopyDBSnapshot', resource: copy, context: { 'aws:RequestedRegion': 'eu-west-1' } },
          tagging(copy, 'eu-west-1', marker, false),
        ];
        expect(authorizeRun(copying)).toEqual({
          allowed: true,
          by: 'CopySnapshots, InheritTagsOnCopies',
        });
        const otherAccount = {
          ...copying[0],
          resource: source.replace(ACCOUNT, '210987654321'),
        } as IamRequest;
        expect(authorizeRun([otherAccount, ...copying.slice(1)]).allowed).toBe(false);
        expect(decide(deletion(copy, 'eu-west-1', marker))).toEqual({ allowed: true, by: 'PruneOwnCopies' });
        expect(decide(deletion(copy, 'eu-west-1', legacy))).toEqual({
          allowed: true,
          by: 'PruneLegacyCopies',
        });
        expect(decide(deletion(foreign, 'eu-west-1', {})).allowed).toBe(false);
      });

      it('copies into an option group of the account (OptionGroupName may be authorised on the og), and does nothing else with it', () => {
        const og = `arn:aws:rds:eu-west-1:${ACCOUNT}:og:oracle-tde`;
        const withOptionGroup = [
          { action: 'rds:CopyDBSnapshot', resource: copy, context: { 'aws:RequestedRegion': 'eu-west-1' } },
          { action: 'rds:CopyDBSnapshot', resource: og, context: { 'aws:RequestedRegion': 'eu-west-1' } },
          tagging(copy, 'eu-west-1', marker, false),
        ];
        expect(authorizeRun(withOptionGroup)).toEqual({
          allowed: true,
          by: 'CopySnapshots, CopyIntoOptionGroups, InheritTagsOnCopies',
        });
        const foreignOg = {
          ...withOptionGroup[1],
          resource: og.replace(ACCOUNT, '210987654321'),
        } as IamRequest;
        expect(decide(foreignOg).allowed).toBe(false);
        for (const action of ['rds:ModifyOptionGroup', 'rds:DeleteOptionGroup', 'rds:AddTagsToResource'])
          expect(
            decide({ action, resource: og, context: { 'aws:RequestedRegion': 'eu-west-1' } }).allowed,
          ).toBe(false);
      });

      it('reads tag keys in conditions without regard to case, as IAM does, and still lets nothing be tagged deletable', () => {
        // A person's tag in another case still names this region: IAM matches it (the code does not: it
        // reads exactly nightshift:copy-source, and RDS must name the source too)
        expect(decide(deletion(copy, 'eu-west-1', { 'NIGHTSHIFT:COPY-SOURCE': source }))).toEqual({
          allowed: true,
          by: 'PruneOwnCopies',
        });
        expect(
          decide(tagging(foreign, 'eu-west-1', { 'NightShift:Copy-Source': source }, true)).allowed,
        ).toBe(false);
      });

      it('with nightshift in two regions, never lets one deployment delete what the other marked', () => {
        // Prepare: deployment B (eu-west-1) marks B's production snapshot for its copies into eu-central-1
        const production = `arn:aws:rds:eu-west-1:${ACCOUNT}:snapshot:ledger-2026-11-23`;
        const bCopy = `arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:ledger-2026-11-23`;
        expect(
          decide(tagging(production, 'eu-west-1', { 'nightshift:copy-source': production }, true), pseudoB),
        ).toEqual({
          allowed: true,
          by: 'MarkSources',
        });

        // Act / Assess: A may delete neither B's marked production snapshot nor one an earlier B marked
        const marks: Record<string, string>[] = [
          { 'nightshift:copy-source': production },
          { 'nightshift:source-arn': production },
        ];
        for (const tags of marks)
          expect(decide(deletion(production, 'eu-west-1', tags))).toEqual({
            allowed: false,
            by: 'implicit deny',
          });
        // B may not delete it either (its own region), nor A's sources, nor A's copies
        expect(
          decide(deletion(production, 'eu-west-1', { 'nightshift:copy-source': production }), pseudoB)
            .allowed,
        ).toBe(false);
        expect(decide(deletion(source, 'eu-central-1', marker), pseudoB).allowed).toBe(false);
        expect(decide(deletion(copy, 'eu-west-1', marker), pseudoB).allowed).toBe(false);
        // Each deletes its own copies in the other's region
        expect(decide(deletion(copy, 'eu-west-1', marker)).allowed).toBe(true);
        expect(
          decide(deletion(bCopy, 'eu-central-1', { 'nightshift:copy-source': production }), pseudoB).allowed,
        ).toBe(true);
      });

      if (kind === 'spoke')
        it("has no KMS permission: encrypted copies with customer-managed keys are the hub role's only", () => {
          expect(JSON.stringify(rawStatements())).not.toMatch(/kms:|Fn::If/);
        });
      else
        it('evaluates the KMS statements under Fn::If for both values of HasCopyKmsKeys', () => {
          const key = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd';
          const grant = {
            action: 'kms:CreateGrant',
            resource: key,
            context: { 'aws:RequestedRegion': 'eu-west-1', 'kms:GrantIsForAWSResource': 'true' },
          };
          const withKeys = { ...pseudo, parameters: { CopyKmsKeyArns: [key] } };

          expect(evaluate(statements(true), grant, withKeys)).toEqual({
            allowed: true,
            by: 'GrantConfiguredKeysToRds',
          });
          expect(
            evaluate(
              statements(true),
              { ...grant, context: { 'aws:RequestedRegion': 'eu-west-1' } },
              withKeys,
            ).allowed,
          ).toBe(false);
          expect(evaluate(statements(false), grant, pseudo)).toEqual({ allowed: false, by: 'implicit deny' });
          expect(() => resolveStatements(rawStatements(), {})).toThrow('HasCopyKmsKeys');
        });

      it('has no statement that lets it add tags of its own choosing outside its region, or delete unless its marker names its own region', () => {
        // Its own region: the stack's (${AWS::Region}) for the hub role, the session's tag for the spoke.
        const ownRegion = kind === 'hub' ? '${AWS::Region}' : '${!aws:PrincipalTag/nightshift-region}';
        const pinned = { 'Fn::Sub': `arn:\${AWS::Partition}:rds:${ownRegion}:\${AWS::AccountId}:*` };
        for (const s of [...statements(true), ...statements(false)].filter((st) => st.Effect === 'Allow')) {
          const actions = list(s.Action);
          if (actions.some((a) => /^rds:(AddTags|RemoveTags)/.test(a))) {
            const inOwnRegion =
              kind === 'hub'
                ? list(s.Resource as string).every((r) => JSON.stringify(r).includes(':rds:${AWS::Region}:'))
                : (s.Condition as Record<string, Record<string, string>> | undefined)?.StringEquals?.[
                    'aws:RequestedRegion'
                  ] === SESSION_REGION;
            const inheritedOnly =
              (s.Condition as Record<string, Record<string, string>> | undefined)?.Bool?.[
                'rds:TagsFromRequest'
              ] === 'false';
            expect(inOwnRegion || inheritedOnly, JSON.stringify(s)).toBe(true);
          }
          if (actions.some((a) => /^rds:Delete/.test(a)))
            expect([
              { StringLike: { 'aws:ResourceTag/nightshift:copy-source': pinned } },
              { StringLike: { 'aws:ResourceTag/nightshift:source-arn': pinned } },
            ]).toContainEqual(s.Condition);
        }
      });
    },
  );

  it('never lets the hub role or any spoke session delete a snapshot the hub role or any session could mark, whatever regions they run for', () => {
    // Prepare: every role that may mark sources (the hub role, deployed in any region; a spoke session
    // tagged with any region), and every role that may delete, in one account
    const ACCOUNT = '123456789012';
    const regions = ['eu-central-1', 'eu-west-1', 'us-east-1'];
    const hub = resolveStatements(
      (
        dev.Resources[roleOf(dev, 'rds-snapshot-copy')]?.Properties.Policies as {
          PolicyDocument: { Statement: unknown[] };
        }[]
      )[0]?.PolicyDocument.Statement ?? [],
      { HasCopyKmsKeys: true },
    );
    const spoke = spokePolicyStatements('rds-snapshot-copy') as IamStatement[];
    const roles = regions.flatMap((region) => [
      { name: `hub@${region}`, statements: hub, region, tag: {} as Record<string, string> },
      { name: `spoke@${region}`, statements: spoke, region, tag: { [SESSION_TAG_KEY]: region } },
    ]);
    const as = (role: (typeof roles)[number], request: IamRequest) =>
      evaluate(
        role.statements,
        { ...request, context: { ...request.context, ...role.tag } },
        {
          partition: 'aws',
          region: role.region,
          account: ACCOUNT,
          parameters: { ...SPOKE_PARAMETERS },
        },
      );

    for (const marker of roles)
      for (const region of regions)
        for (const key of ['nightshift:copy-source', 'nightshift:source-arn']) {
          // Act: a snapshot in `region` with a marker naming any snapshot of any region
          for (const named of regions) {
            const snapshot = `arn:aws:rds:${region}:${ACCOUNT}:snapshot:s`;
            const value = `arn:aws:rds:${named}:${ACCOUNT}:snapshot:s`;
            const marking = {
              action: 'rds:AddTagsToResource',
              resource: snapshot,
              context: {
                'aws:RequestedRegion': region,
                'aws:TagKeys': [key],
                [`aws:RequestTag/${key}`]: value,
                'rds:TagsFromRequest': 'true',
              },
            };
            if (!as(marker, marking).allowed) continue;
            // Assess: whoever could put that marker there, nobody may delete the snapshot
            for (const deleter of roles) {
              const deletion = {
                action: 'rds:DeleteDBSnapshot',
                resource: snapshot,
                context: { 'aws:RequestedRegion': region, [`aws:ResourceTag/${key}`]: value },
              };
              expect(
                as(deleter, deletion).allowed,
                `${marker.name} marked ${snapshot}; ${deleter.name} deletes`,
              ).toBe(false);
            }
          }
        }
    // The markers it does write are allowed (the loop above proves something)
    expect(
      as(roles[1] as (typeof roles)[number], {
        action: 'rds:AddTagsToResource',
        resource: `arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:s`,
        context: {
          'aws:RequestedRegion': 'eu-central-1',
          'aws:TagKeys': ['nightshift:copy-source'],
          'aws:RequestTag/nightshift:copy-source': `arn:aws:rds:eu-central-1:${ACCOUNT}:snapshot:s`,
          'rds:TagsFromRequest': 'true',
        },
      }),
    ).toEqual({ allowed: true, by: 'MarkSources' });
  });

  it('alarms when a destination region falls behind, on the metric the sweep really writes', () => {
    // Prepare: metrics on, as deployed in dev; stdout captured
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.stubEnv('NIGHTSHIFT_STAGE', 'dev');
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
      out.push(String(chunk));
      return true;
    }) as typeof process.stdout.write);

    // Act
    recordLag({
      'eu-west-1': {
        database: 'instance:orders',
        basis: 'source',
        arn: 'arn:aws:rds:eu-central-1:123456789012:snapshot:orders-a',
        since: '2026-11-21T12:00:00Z',
        hours: 40,
      },
      'us-east-1': null,
    });

    // Assess
    const records = out
      .join('')
      .split('\n')
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as EmfRecord);
    const alarm = alarms(dev).find((a) => a.MetricName === LAG_METRIC) as Alarm & Record<string, unknown>;
    expect(alarm).toMatchObject({
      AlarmName: 'nightshift-dev-rds-snapshot-copy-uncopied',
      Namespace: METRICS_NAMESPACE,
      Dimensions: [
        { Name: 'service', Value: 'rds-snapshot-copy' },
        { Name: 'stage', Value: 'dev' },
      ],
      Statistic: 'Maximum',
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: '36',
      // No data is what a sweep that stopped running looks like: it must page too.
      TreatMissingData: 'breaching',
      AlarmActions: [TOPIC],
      ActionsEnabled: { 'Fn::If': ['CopySweepScheduled', true, false] },
    });
    // Every window of the alarm holds a daily sweep: 26 hourly periods, all of them breaching to alarm.
    expect(alarm.Period).toBe(3600);
    expect(alarm.EvaluationPeriods).toBe(26);
    expect(alarm.DatapointsToAlarm).toBe(26);
    expect(records.map((r) => [r.region, r[LAG_METRIC], r.lag_database])).toEqual([
      ['eu-west-1', 40, 'instance:orders'],
      ['us-east-1', 0, undefined],
    ]);
    for (const record of records) {
      const directive = record._aws.CloudWatchMetrics.find((d) => d.Namespace === alarm.Namespace);
      expect(directive?.Metrics.map((m) => m.Name)).toContain(alarm.MetricName);
      expect(directive?.Dimensions).toContainEqual(alarm.Dimensions.map((d) => d.Name));
      expect(directive?.Dimensions).toContainEqual(['service', 'stage', 'region']);
      for (const d of alarm.Dimensions) expect(record[d.Name]).toBe(d.Value);
    }
    const parameter = (t: Template) =>
      (t as unknown as { Parameters: Record<string, { Default: string }> }).Parameters.CopySchedulesState
        ?.Default;
    expect((dev as unknown as { Conditions: Record<string, unknown> }).Conditions.CopySweepScheduled).toEqual(
      {
        'Fn::Equals': [{ Ref: 'CopySchedulesState' }, 'ENABLED'],
      },
    );
    expect(parameter(dev)).toBe('ENABLED');
    expect(parameter(switches)).toBe('copySchedulesState');
  });

  it.each([0, 1])(
    'pages within two days when copies stop at RETENTION_DAYS %i, although sources expire daily (BackupRetentionPeriod 1)',
    (retentionDays) => {
      // Prepare: the deployed alarm, evaluated as CloudWatch does: hourly periods of the Maximum, missing
      // data breaching, DatapointsToAlarm of EvaluationPeriods; one automated snapshot a day at 03:00 (the
      // previous one expires), a sweep a day at 05:00. Copies work for days -3 to -1 and stop on day 0.
      const alarm = alarms(dev).find((a) => a.MetricName === LAG_METRIC) as Alarm & Record<string, unknown>;
      expect(alarm).toMatchObject({
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'breaching',
      });
      const threshold = Number(alarm.Threshold);
      const HOUR = 3_600_000;
      const start = Date.parse('2026-11-20T00:00:00Z');
      const at = (day: number, hour: number) => new Date(start + (day + 3) * 24 * HOUR + hour * HOUR);
      const SRC = 'eu-central-1';
      const DST = 'eu-west-1';
      const id = (day: number) => `rds:orders-2026-11-${20 + day + 3}-03-00`;
      const arn = (region: string, snapshot: string) =>
        `arn:aws:rds:${region}:123456789012:snapshot:${snapshot}`;
      let copies: Snapshot[] = [];
      const lag = new Map<number, number>();
      for (let day = -3; day <= 3; day += 1) {
        const now = at(day, 5);
        const taken = at(day, 3);
        const today: Snapshot = {
          arn: arn(SRC, id(day)),
          id: id(day),
          kind: 'instance',
          type: 'automated',
          status: 'available',
          encrypted: false,
          created: taken,
          originalCreated: taken,
          dbId: 'orders',
          tags: {},
        };
        // Act: the sweep plans; its copies land while copies work, its deletions always
        const plan = planCopies(
          {
            mode: 'sweep',
            sources: [today],
            siblings: [],
            missing: [],
            regions: [DST],
            destinations: { [DST]: copies },
            databases: { 'instance:orders': { tags: {}, created: at(-10, 0) } },
          },
          { sourceRegion: SRC, retentionDays, kmsKeys: {}, optionGroups: {}, sourceTags: [], now },
        );
        lag.set(now.getTime(), plan.lag[DST]?.hours ?? 0);
        const pruned = new Set(plan.prunes.filter((w) => w.hasWork).map((w) => w.id));
        copies = copies.filter((c) => !pruned.has(c.id));
        if (day < 0)
          for (const w of plan.copies.filter((c) => c.hasWork))
            copies.push({
              ...today,
              arn: arn(DST, w.targetId),
              id: w.targetId,
              type: 'manual',
              copiedFrom: today.arn,
              sourceArn: today.arn,
              markerKey: 'nightshift:copy-source',
              tags: { 'nightshift:copy-source': today.arn },
            });
      }
      const breaching = (hour: number) => {
        const value = lag.get(start + hour * HOUR);
        return value === undefined || value > threshold;
      };
      const inAlarm = (hour: number) =>
        Array.from({ length: Number(alarm.EvaluationPeriods) }, (_, i) => hour - i).filter(breaching)
          .length >= Number(alarm.DatapointsToAlarm);
      const hourOf = (d: Date) => (d.getTime() - start) / HOUR;

      // Assess: OK while copies work (from the first full window), ALARM within 48 hours of the first sweep
      // that copied nothing, and it stays there
      for (let h = hourOf(at(-2, 7)); h < hourOf(at(0, 5)) + 26; h += 1)
        expect(inAlarm(h), `hour ${h}`).toBe(false);
      const first = Array.from({ length: 24 * 4 }, (_, i) => hourOf(at(0, 5)) + i).find(inAlarm);
      expect(first).toBeDefined();
      expect((first as number) - hourOf(at(0, 5))).toBeLessThanOrEqual(48);
      for (let h = first as number; h <= hourOf(at(3, 5)); h += 1) expect(inAlarm(h), `hour ${h}`).toBe(true);
    },
  );

  describe('the fleet hub (fleet: true, infra/fleet.yml)', () => {
    const fleetResources = (t: Template) =>
      Object.entries(t.Resources).filter(
        ([id, r]) =>
          r.Condition === 'IsFleet' || /Fleet/.test(id) || r.Type === 'AWS::StepFunctions::StateMachine',
      );
    const parameter = (t: Template, name: string) =>
      (t as unknown as { Parameters: Record<string, { Default: string }> }).Parameters[name]?.Default;

    it('deploys nothing of the fleet without fleet: true, and every fleet resource only under IsFleet', () => {
      for (const t of [dev, prod, killed, hub]) {
        const found = fleetResources(t);
        expect(found.length).toBeGreaterThanOrEqual(20);
        for (const [id, r] of found) expect(r.Condition, id).toBe('IsFleet');
      }
      expect((dev as unknown as { Conditions: Record<string, unknown> }).Conditions.IsFleet).toEqual({
        'Fn::Equals': [{ Ref: 'Fleet' }, 'true'],
      });
      expect([parameter(dev, 'Fleet'), parameter(prod, 'Fleet'), parameter(hub, 'Fleet')]).toEqual([
        'false',
        'false',
        'true',
      ]);
    });

    it('refuses to package fleet: true without allowedAccounts', () => {
      expect(() => packageStage('dev', { fleet: 'true' }, 'dev-fleet-no-allowlist')).toThrow(
        /Cannot resolve variable at "custom\.fleetRequiresAllowedAccounts"/,
      );
    });

    it('gives every function the allowlist, the protected words and the spoke external id', () => {
      for (const name of FUNCTIONS) {
        expect(functionEnv(dev, name)).toMatchObject({
          ALLOWED_ACCOUNTS: '',
          PROTECTED_ACCOUNT_PATTERNS: 'prod,production,live',
          SPOKE_EXTERNAL_ID: '',
        });
        expect(functionEnv(hub, name).ALLOWED_ACCOUNTS).toBe('111111111111,222222222222');
      }
      expect(functionEnv(hub, 'fleet')).toMatchObject({ FLEET_REGIONS: 'eu-central-1', FLEET_ACCOUNTS: '' });
    });

    it.each(FLEET_FUNCTIONS)(
      'runs %s in a STANDARD state machine of the built definition, valid ASL, invoking that function',
      (fn) => {
        const found = resourcesOfType(hub, 'AWS::StepFunctions::StateMachine').filter(
          ([, r]) => r.Properties.StateMachineName === `nightshift-dev-${fn}-fleet`,
        );
        expect(found).toHaveLength(1);
        const props = (found[0] as [string, Resource])[1].Properties;
        expect(props.StateMachineType).toBe('STANDARD');
        // dist/fleet-asl/<fn>.json is what the build wrote from shared/fleet/definition.ts
        expect(props.Definition).toEqual(templateDefinition(fn));
        expect(props.DefinitionSubstitutions).toEqual({
          FunctionArn: { 'Fn::GetAtt': [logicalId(fn), 'Arn'] },
          FleetFunctionArn: { 'Fn::GetAtt': [logicalId('fleet'), 'Arn'] },
          LeaseTable: { Ref: 'LeaseTable' },
        });
        const result = aslValidator(structuredClone(props.Definition), { checkPaths: true, checkArn: true });
        expect(result.errorsText('\n')).toBe('');
        expect(result.isValid).toBe(true);
      },
    );

    it('lets the state machines invoke only nightshift functions, write only fleet rows, and run only their own maps', () => {
      const role = hub.Resources.FleetStateMachineRole?.Properties as {
        Policies: { PolicyDocument: { Statement: Statement[] } }[];
      };
      const statements = role.Policies.flatMap((p) => p.PolicyDocument.Statement);
      const by = (action: string) => statements.filter((s) => list(s.Action).includes(action));
      const invoked = by('lambda:InvokeFunction')[0]?.Resource as { 'Fn::GetAtt': [string, string] }[];
      expect(invoked.map((r) => r['Fn::GetAtt'][0]).sort()).toEqual(FUNCTIONS.map(logicalId).sort());
      expect(by('dynamodb:PutItem')).toEqual([
        expect.objectContaining({
          Resource: { 'Fn::GetAtt': ['LeaseTable', 'Arn'] },
          Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['fleet#*'] } },
        }),
      ]);
      expect(JSON.stringify(by('states:StartExecution')[0]?.Resource)).toContain(
        ':stateMachine:nightshift-dev-*-fleet',
      );
      expect(JSON.stringify(by('states:StopExecution')[0]?.Resource)).toContain(
        ':execution:nightshift-dev-*-fleet/*',
      );
      expect(statements.flatMap((s) => list(s.Action)).sort()).toEqual([
        'dynamodb:PutItem',
        'lambda:InvokeFunction',
        'states:DescribeExecution',
        'states:StartExecution',
        'states:StopExecution',
      ]);
    });

    it("schedules a fleet run of every scheduled function on that function's own cron, zone and input, with the fleet's concurrency", () => {
      const own = resourcesOfType(hub, 'AWS::Scheduler::Schedule').filter(
        ([, r]) => r.Condition !== 'IsFleet' && r.Properties.State === 'ENABLED',
      );
      const fleetSchedules = resourcesOfType(hub, 'AWS::Scheduler::Schedule').filter(
        ([, r]) => r.Condition === 'IsFleet',
      );
      expect(fleetSchedules.map(([id]) => id).sort()).toEqual(
        own.map(([id]) => id.replace(/Schedule$/, 'FleetSchedule')).sort(),
      );
      for (const [id, schedule] of own) {
        const twin = hub.Resources[id.replace(/Schedule$/, 'FleetSchedule')]?.Properties as Record<
          string,
          unknown
        >;
        const target = schedule.Properties.Target as {
          Arn: { 'Fn::GetAtt': [string, string] };
          Input: string;
        };
        const fn = FLEET_FUNCTIONS.find((f) => logicalId(f) === target.Arn['Fn::GetAtt'][0]) as string;
        expect(twin.ScheduleExpression).toBe(schedule.Properties.ScheduleExpression);
        expect(twin.ScheduleExpressionTimezone).toBe(schedule.Properties.ScheduleExpressionTimezone);
        expect(twin.GroupName).toEqual({ Ref: 'FleetScheduleGroup' });
        expect(twin.State).toBe('ENABLED');
        const twinTarget = twin.Target as { Arn: { Ref: string }; Input: string };
        const machine = hub.Resources[twinTarget.Arn.Ref]?.Properties;
        expect(machine?.StateMachineName).toBe(`nightshift-dev-${fn}-fleet`);
        const input = FleetExecutionInput.parse(JSON.parse(twinTarget.Input));
        expect(input).toEqual({
          event: JSON.parse(target.Input),
          maxConcurrency: 50,
          toleratedFailurePercentage: 100,
        });
      }
      expect(hub.Resources.FleetScheduleGroup?.Properties.Name).toBe('nightshift-dev-fleet');
      const switched = packageStage(
        'dev',
        { ...FLEET_PARAMS, fleetSchedulesState: 'DISABLED' },
        'dev-fleet-off',
      );
      for (const [id] of fleetSchedules)
        expect(switched.Resources[id]?.Properties.State, id).toBe('DISABLED');
      // The kill switch turns them off too, whatever fleetSchedulesState says.
      const killed = packageStage('dev', { ...FLEET_PARAMS, killSwitch: 'true' }, 'dev-fleet-killed');
      for (const [id] of fleetSchedules) expect(killed.Resources[id]?.Properties.State, id).toBe('DISABLED');
      for (const [id] of fleetSchedules) expect(hub.Resources[id]?.Properties.State, id).toBe('ENABLED');
    });

    it('alarms when a fleet run has failed targets, on the metric the finish step really writes', () => {
      // Prepare: metrics on, as deployed; stdout captured
      vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
      vi.stubEnv('NIGHTSHIFT_STAGE', 'dev');
      const out: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
        out.push(String(chunk));
        return true;
      }) as typeof process.stdout.write);
      const summary = { changed: 0, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 1 };

      // Act
      emitFleetMetrics({
        run: 'run-1',
        function: 'ecs-scheduler',
        dryRun: false,
        wallSeconds: 12,
        targets: [
          { account: '111111111111', region: 'eu-central-1', status: 'failed', reason: 'x', summary },
          { account: '222222222222', region: 'eu-central-1', status: 'succeeded', reason: '', summary: null },
        ],
      });

      // Assess
      const records = out
        .join('')
        .split('\n')
        .filter((l) => l.includes('"_aws"'))
        .map((l) => JSON.parse(l) as EmfRecord);
      const alarm = alarms(hub).find((a) => a.MetricName === FLEET_TARGETS_FAILED_METRIC);
      expect(alarm).toMatchObject({
        AlarmName: 'nightshift-dev-fleet-failed',
        Namespace: METRICS_NAMESPACE,
        ComparisonOperator: 'GreaterThanThreshold',
        Threshold: 0,
        TreatMissingData: 'notBreaching',
        AlarmActions: [TOPIC],
      });
      const run = records.find((r) => r[FLEET_TARGETS_FAILED_METRIC] !== undefined);
      expect(run?.[FLEET_TARGETS_FAILED_METRIC]).toBe(1);
      const directive = run?._aws.CloudWatchMetrics.find((d) => d.Namespace === alarm?.Namespace);
      expect(directive?.Dimensions).toContainEqual(alarm?.Dimensions.map((d) => d.Name));
      for (const d of alarm?.Dimensions ?? []) expect(run?.[d.Name]).toBe(d.Value);
      // One record per target, with its account and region
      const perTarget = records.filter((r) => r.account !== undefined);
      expect(perTarget.map((r) => [r.account, r.region, r.FleetTargetFailed])).toEqual([
        ['111111111111', 'eu-central-1', 1],
        ['222222222222', 'eu-central-1', 0],
      ]);
      for (const r of perTarget)
        expect(r._aws.CloudWatchMetrics[0]?.Dimensions[0]).toEqual(
          expect.arrayContaining(['function', 'account', 'region', 'stage']),
        );
    });
  });
});
