/**
 * Invariants of the packaged template: every function is bundled, has its own role, and that role
 * allows exactly what its code sends, with mutations scoped to resources or guarded by conditions.
 * The template is built offline by `osls package` and must pass cfn-lint with no errors.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

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
};
// Alarm restarts record their time before sending, so a retry would only meet the cooldown.
const NO_RETRIES = ['ssm-restart'];
// Calls the SDK makes whose IAM action differs from the command name.
const ACTION_ALIASES: Record<string, string> = {};

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

const cfnLintAvailable = () => spawnSync('cfn-lint', ['--version'], { stdio: 'ignore' }).status === 0;
const logicalId = (name: string) =>
  `${name.replace(/-/g, 'Dash').replace(/^./, (c) => c.toUpperCase())}LambdaFunction`;
const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);

/** Every AWS API call a function's code makes, as IAM actions, read from its SDK imports. */
const actionsSentBy = (name: string): string[] => {
  const dir = join('functions', name);
  const actions = new Set<string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(join(dir, file), 'utf8');
    for (const match of source.matchAll(/import\s*{([^}]*)}\s*from\s*'@aws-sdk\/([a-z0-9-]+)'/g)) {
      const prefix = SDK_PREFIX[match[2] ?? ''];
      if (!prefix) continue;
      for (const raw of (match[1] ?? '').split(',')) {
        const id = raw.replace(/^\s*type\s+/, '').trim();
        const command = id.match(/^(\w+)Command$/)?.[1] ?? id.match(/^paginate(\w+)$/)?.[1];
        if (command) actions.add(ACTION_ALIASES[`${prefix}:${command}`] ?? `${prefix}:${command}`);
      }
    }
  }
  return [...actions].sort();
};

const packageStage = (stage: string): Template => {
  const dir = `.serverless-test/${stage}`;
  rmSync(dir, { recursive: true, force: true });
  const run = spawnSync('npx', ['osls', 'package', '--stage', stage, '--package', dir], {
    encoding: 'utf8',
    env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' },
  });
  if (run.status !== 0) throw new Error(`osls package failed: ${run.stdout}\n${run.stderr}`);
  return JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template;
};

describe('serverless.yml and infra/', () => {
  let dev: Template;
  let prod: Template;

  beforeAll(() => {
    expect(
      FUNCTIONS.every((name) => existsSync(`dist/${name}/index.mjs`)),
      'run npm run build first',
    ).toBe(true);
    dev = packageStage('dev');
    prod = packageStage('prod');
  });

  it.each(['dev', 'prod'])(
    'packages the %s stage into a template cfn-lint accepts with no errors',
    (stage) => {
      if (!cfnLintAvailable() && process.env.CI !== 'true') {
        console.warn('SKIPPED cfn-lint check: pip install cfn-lint');
        return;
      }
      // W3005 is the DependsOn osls itself writes next to the role reference.
      const lint = spawnSync(
        'cfn-lint',
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
    expect(zip.stdout.trim().split('\n')).toEqual([`dist/${name}/index.mjs`]);
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

  it('runs the example schedules in a time zone, with retries and a dead-letter queue, off in prod', () => {
    for (const id of ['EcsStopSchedule', 'EcsStartSchedule']) {
      const schedule = dev.Resources[id]?.Properties as Record<string, never>;
      expect(schedule).toMatchObject({ ScheduleExpressionTimezone: 'Europe/Berlin', State: 'ENABLED' });
      expect(schedule.Target).toMatchObject({
        RetryPolicy: { MaximumRetryAttempts: 3 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': ['OnFailureQueue', 'Arn'] } },
      });
      expect(prod.Resources[id]?.Properties.State).toBe('DISABLED');
    }
    expect(dev.Resources.EcsStopSchedule?.Properties.ScheduleExpression).toBe('cron(0 19 ? * MON-FRI *)');
    expect(dev.Resources.EcsStartSchedule?.Properties.ScheduleExpression).toBe('cron(0 7 ? * MON-FRI *)');
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
});
