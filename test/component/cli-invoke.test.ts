/**
 * The CLI's default path: Lambda Invoke of the deployed function, request-response, simulated with
 * aws-sdk-client-mock (there is no Lambda to invoke in moto without Docker).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { cli } from '#test/support/cli.ts';

const lambda = mockClient(LambdaClient);
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)) as never;
const REPORT = {
  action: 'stop',
  dryRun: false,
  summary: { changed: 1, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 },
  resources: [
    {
      arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
      type: 'ecs-service',
      outcome: 'changed',
      detail: 'desiredCount 3 → 0; saved in tag nightshift:stopped',
    },
  ],
};

const payloads = () =>
  lambda
    .commandCalls(InvokeCommand)
    .map((c) => JSON.parse(new TextDecoder().decode(c.args[0].input.Payload as Uint8Array)));

describe('nightshift CLI invoking deployed functions', () => {
  beforeEach(() => lambda.reset());

  it('invokes nightshift-<stage>-<function> request-response with the contract payload', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(REPORT) });

    const run = await cli(['stop', '--cluster', 'stage', '--tag', 'team=shop', '--stage', 'prod', '--yes']);

    const input = lambda.commandCalls(InvokeCommand)[0]?.args[0].input;
    expect(input).toMatchObject({
      FunctionName: 'nightshift-prod-ecs-scheduler',
      InvocationType: 'RequestResponse',
    });
    expect(JSON.parse(new TextDecoder().decode(input?.Payload as Uint8Array))).toEqual({
      action: 'stop',
      clusters: ['stage'],
      tags: { team: 'shop' },
    });
    expect(run.code).toBe(0);
    expect(run.out).toContain('ecs-scheduler stop: 1 changed');
  });

  it('asks at a terminal only after showing the deployed function’s dry run', async () => {
    lambda
      .on(InvokeCommand)
      .resolvesOnce({
        StatusCode: 200,
        Payload: encode({ ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } }),
      })
      .resolves({ StatusCode: 200, Payload: encode(REPORT) });

    const run = await cli(['rotate', '--group', 'web', '--stage', 'stage'], {
      interactive: true,
      answer: true,
    });

    const payloads = lambda
      .commandCalls(InvokeCommand)
      .map((c) => JSON.parse(new TextDecoder().decode(c.args[0].input.Payload as Uint8Array)));
    expect(payloads).toEqual([
      { action: 'rotate', groups: ['web'], dryRun: true },
      { action: 'rotate', groups: ['web'] },
    ]);
    expect(run.questions).toEqual(['Apply 1 planned change(s) in stage stage?']);
  });

  it('invokes copy-snapshot in the snapshot’s own region and passes target regions through', async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode({ ...REPORT, action: 'copy' }) });

    await cli([
      'copy-snapshot',
      'arn:aws:rds:us-east-1:123456789012:snapshot:orders-a',
      '--region',
      'eu-west-1',
      '--yes',
    ]);

    const call = lambda.commandCalls(InvokeCommand)[0];
    expect(await call?.thisValue.config.region()).toBe('us-east-1');
    expect(JSON.parse(new TextDecoder().decode(call?.args[0].input.Payload as Uint8Array))).toEqual({
      action: 'copy',
      snapshot: 'arn:aws:rds:us-east-1:123456789012:snapshot:orders-a',
      regions: ['eu-west-1'],
    });
  });

  it('reports a function error with its type and exits 1', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: encode({
        errorType: 'RunFailedError',
        errorMessage: 'all 1 resource(s) failed; first error: x',
      }),
    });

    const run = await cli(['restart', '--ecs-service', 'shop/web', '--yes']);

    expect(run.code).toBe(1);
    expect(run.err).toBe(
      'nightshift-dev-ssm-restart failed: RunFailedError: all 1 resource(s) failed; first error: x',
    );
  });

  it('prints one JSON document with --json when the deployed function fails, and the message on stderr', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: encode({
        errorType: 'RunFailedError',
        errorMessage: 'all 1 resource(s) failed; first error: AccessDenied',
        trace: ['RunFailedError: all 1 resource(s) failed', '    at withOps'],
      }),
    });

    const run = await cli(['stop', '--cluster', 'stage', '--stage', 'stage', '--yes', '--json']);

    expect(run.code).toBe(1);
    expect(JSON.parse(run.out)).toEqual({
      error: {
        type: 'RunFailedError',
        message: 'all 1 resource(s) failed; first error: AccessDenied',
        function: 'nightshift-stage-ecs-scheduler',
      },
    });
    expect(run.err).toBe(
      'nightshift-stage-ecs-scheduler failed: RunFailedError: all 1 resource(s) failed; first error: AccessDenied',
    );
  });

  it('prints one JSON error document with --json when it refuses before invoking anything', async () => {
    // Act: a pipeline without --yes, and a mistyped tag
    const noYes = await cli(['stop', '--cluster', 'stage', '--stage', 'stage', '--json']);
    const badTag = await cli(['stop', '--tag', 'team', '--stage', 'stage', '--yes', '--json']);

    // Assess
    expect(noYes.code).toBe(2);
    expect(JSON.parse(noYes.out)).toEqual({
      error: {
        type: 'Refused',
        message:
          'refusing to run ecs-scheduler without --yes: not attached to a terminal, so nobody can confirm. Add --dry-run to see the plan.',
        exitCode: 2,
      },
    });
    expect(badTag.code).toBe(2);
    expect(JSON.parse(badTag.out)).toEqual({
      error: { type: 'Refused', message: '--tag expects key=value, got "team"', exitCode: 2 },
    });
    expect(lambda.commandCalls(InvokeCommand)).toHaveLength(0);
  });

  it('exits 3 when an on-demand restart restarted nothing because its targets were skipped, and says why', async () => {
    const skipped = (id: string, detail: string) => ({
      arn: `arn:aws:ec2:eu-central-1:123456789012:instance/${id}`,
      type: 'ec2-instance',
      outcome: 'skipped',
      detail,
    });
    const report = {
      action: 'restart',
      dryRun: false,
      summary: { changed: 0, planned: 0, unchanged: 0, skipped: 3, undone: 0, waiting: 0, failed: 0 },
      resources: [
        skipped(
          'i-0a1b2c3d4e5f60718',
          'another restart of it is in progress: unit:nginx.service via alarm, by ssm-restart run 1 (nightshift-dev-ssm-restart), ' +
            'since 2026-11-23T02:14:41Z (that run ends by 2026-11-23T02:26:41Z); not restarted for on-demand — run again once it is done',
        ),
        skipped(
          'i-0a1b2c3d4e5f60719',
          'not an SSM managed instance, or its agent is offline (PingStatus ConnectionLost); nothing sent',
        ),
        skipped(
          'i-0a1b2c3d4e5f60720',
          'not opted in: the instance has no nightshift:restartable=true tag; nothing sent',
        ),
      ],
    };
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(report) });

    const run = await cli(['restart', '--tag', 'app=web', '--unit', 'nginx.service', '--yes']);

    expect(run.code).toBe(3);
    expect(run.err).toBe(
      'nothing restarted: 3 target(s) skipped (1 another restart of it is in progress, 1 not online in SSM, ' +
        '1 not opted in (no nightshift:restartable=true)); the rows say why. Fix what they say (or wait for the ' +
        'restart in progress, until the time its row names), then run the same command again.',
    );
  });

  it('exits 3 for a restart nothing would restart at the confirmation step too, without asking', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({
        action: 'restart',
        dryRun: true,
        summary: { changed: 0, planned: 0, unchanged: 0, skipped: 1, undone: 0, waiting: 0, failed: 0 },
        resources: [
          {
            arn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
            type: 'ecs-service',
            outcome: 'skipped',
            detail: 'not opted in: the service has no nightshift:restartable=true tag; nothing redeployed',
          },
        ],
      }),
    });

    const run = await cli(['restart', '--ecs-service', 'shop/web'], { interactive: true, answer: true });

    expect(run.questions).toEqual([]);
    expect(run.code).toBe(3);
    expect(run.err).toContain('nothing to change.');
    expect(run.err).toContain('nothing restarted: 1 target(s) skipped (1 not opted in');
    expect(run.err).not.toContain('DRY_RUN is true');
  });

  it('exits 3 when restart commands were still running when the function had to stop, and says how to follow them', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({
        action: 'restart',
        dryRun: false,
        summary: { changed: 2, planned: 0, unchanged: 0, skipped: 0, undone: 0, waiting: 0, failed: 0 },
        resources: [
          {
            arn: 'arn:aws:ec2:eu-central-1:123456789012:instance/i-0a1b2c3d4e5f60718',
            type: 'ec2-instance',
            outcome: 'changed',
            detail:
              'still running when the Lambda had to stop: command 7f1c is InProgress on i-0a1b2c3d4e5f60718 (systemctl restart nginx.service); ' +
              'follow it with aws ssm get-command-invocation --command-id 7f1c --instance-id i-0a1b2c3d4e5f60718',
          },
          {
            arn: 'arn:aws:ec2:eu-central-1:123456789012:instance/i-0a1b2c3d4e5f60719',
            type: 'ec2-instance',
            outcome: 'changed',
            detail: 'systemctl restart nginx.service: command 7f1c Success',
          },
        ],
      }),
    });

    const run = await cli(['restart', '--tag', 'app=web', '--unit', 'nginx.service', '--yes']);

    expect(run.code).toBe(3);
    expect(run.err).toBe(
      '1 still running when the function had to stop: SSM goes on without it, so whether they worked is not known yet. ' +
        'Follow each with the aws ssm get-command-invocation its row gives, and do not restart them again before that says they ended.',
    );
  });

  it('exits 3 for a start that did nothing because a stop may still be running on the service, and says what to do', async () => {
    const detail =
      'saved state from 2025-01-01T03:00:00Z is 2m old and the service is not parked yet: a stop may still be running on it ' +
      '(a stop saves its state before it parks); nothing changed — if no stop is running, run start again after 2025-01-01T03:15:00Z';
    const report = (outcome: string) => ({
      action: 'start',
      dryRun: false,
      summary: {
        changed: 0,
        planned: 0,
        unchanged: 0,
        skipped: outcome === 'skipped' ? 1 : 0,
        undone: outcome === 'undone' ? 1 : 0,
        failed: 0,
      },
      resources: [
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
          type: 'ecs-service',
          outcome,
          detail,
        },
      ],
    });
    lambda
      .on(InvokeCommand)
      .resolvesOnce({ StatusCode: 200, Payload: encode(report('undone')) })
      .resolves({ StatusCode: 200, Payload: encode(report('skipped')) });

    const run = await cli(['start', '--cluster', 'shop', '--stage', 'dev', '--yes']);
    // An ecs-scheduler deployed before these rows became undone reports them skipped.
    const older = await cli(['start', '--cluster', 'shop', '--stage', 'dev', '--yes']);

    expect([run.code, older.code]).toEqual([3, 3]);
    expect(run.err).toContain('1 not done yet, for the reason each row gives');
    expect(older.err).toBe(run.err);
  });

  describe('Lambda refusing the invoke for its reserved concurrency (429)', () => {
    const throttled = () =>
      new TooManyRequestsException({
        message: 'Rate Exceeded.',
        $metadata: { httpStatusCode: 429 },
        Reason: 'ReservedFunctionConcurrentInvocationLimitExceeded',
      } as never);

    it('exits 2, switched off, when reserved concurrency is 0 (the kill switch)', async () => {
      lambda.on(InvokeCommand).rejects(throttled());
      lambda.on(GetFunctionConcurrencyCommand).resolves({ ReservedConcurrentExecutions: 0 });

      const run = await cli(['stop', '--cluster', 'shop', '--stage', 'dev', '--yes', '--json']);

      expect(run.code).toBe(2);
      expect(run.err).toBe(
        'Lambda refused to run nightshift-dev-ecs-scheduler (TooManyRequestsException: Rate Exceeded., ' +
          'ReservedFunctionConcurrentInvocationLimitExceeded); nothing ran: it is switched off (reserved concurrency 0: ' +
          'the kill switch). Nothing nightshift does runs until the switch is turned back on (see Deploy safety in the README).',
      );
      expect(JSON.parse(run.out)).toMatchObject({
        error: { type: 'InvokeRefusedError', function: 'nightshift-dev-ecs-scheduler' },
      });
      expect(lambda.commandCalls(InvokeCommand)).toHaveLength(1);
    });

    it('exits 3, run again, when another run holds the only slot (reserved concurrency 1)', async () => {
      lambda.on(InvokeCommand).rejects(throttled());
      lambda.on(GetFunctionConcurrencyCommand).resolves({ ReservedConcurrentExecutions: 1 });

      const run = await cli(['start', '--cluster', 'shop', '--stage', 'dev', '--yes']);

      expect(run.code).toBe(3);
      expect(run.err).toContain(
        'nothing ran: another run of the function is in progress (reserved concurrency 1); run the same command again when it ends',
      );
    });

    it('exits 2 naming both causes when it cannot check which, and 1 for other throttling', async () => {
      lambda.on(InvokeCommand).rejects(throttled());
      lambda
        .on(GetFunctionConcurrencyCommand)
        .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));

      const unknown = await cli(['stop', '--cluster', 'shop', '--stage', 'dev', '--yes']);
      lambda.on(InvokeCommand).rejects(
        new TooManyRequestsException({
          message: 'Rate Exceeded.',
          $metadata: { httpStatusCode: 429 },
          Reason: 'CallerRateLimitExceeded',
        } as never),
      );
      const rate = await cli(['stop', '--cluster', 'shop', '--stage', 'dev', '--yes']);

      expect(unknown.code).toBe(2);
      expect(unknown.err).toContain(
        'Either it is switched off (reserved concurrency 0: the kill switch) or another run of it is in progress; ' +
          'which could not be checked (AccessDeniedException: not authorized)',
      );
      expect(rate.code).toBe(1);
    });
  });

  it('exits 1 when the report has failed rows, and prints JSON for machines', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({ ...REPORT, summary: { ...REPORT.summary, failed: 1 } }),
    });

    const run = await cli(['tag-snapshots', '--json', '--yes']);

    expect(run.code).toBe(1);
    expect(JSON.parse(run.out)).toMatchObject({ summary: { failed: 1 } });
  });

  it('sends the confirmed dry run’s planDigest with the apply, and only when the dry run returned one', async () => {
    const digest = 'a'.repeat(64);
    const planned = { ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } };
    lambda
      .on(InvokeCommand)
      .resolvesOnce({ StatusCode: 200, Payload: encode({ ...planned, planDigest: digest }) })
      .resolvesOnce({ StatusCode: 200, Payload: encode(REPORT) })
      .resolvesOnce({ StatusCode: 200, Payload: encode(planned) })
      .resolves({ StatusCode: 200, Payload: encode(REPORT) });

    const withDigest = await cli(['stop', '--cluster', 'stage'], { interactive: true, answer: true });
    const without = await cli(['stop', '--cluster', 'stage'], { interactive: true, answer: true });

    expect(payloads()).toEqual([
      { action: 'stop', clusters: ['stage'], dryRun: true },
      { action: 'stop', clusters: ['stage'], planDigest: digest },
      { action: 'stop', clusters: ['stage'], dryRun: true },
      { action: 'stop', clusters: ['stage'] },
    ]);
    expect([withDigest.code, without.code]).toEqual([0, 0]);
  });

  it('says plainly when the function refused an apply whose plan changed, and exits 3', async () => {
    const refused = {
      action: 'stop',
      dryRun: false,
      summary: { changed: 0, planned: 0, unchanged: 0, skipped: 1, undone: 0, waiting: 0, failed: 0 },
      resources: [
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:service/stage/web',
          type: 'ecs-service',
          outcome: 'skipped',
          detail:
            'the plan changed since it was confirmed (another run, a person or AWS changed something in between); ' +
            'nothing changed — look at the new plan and confirm again (the new plan: desiredCount 5 → 0)',
        },
      ],
    };
    lambda
      .on(InvokeCommand)
      .resolvesOnce({
        StatusCode: 200,
        Payload: encode({
          ...REPORT,
          dryRun: true,
          summary: { ...REPORT.summary, changed: 0, planned: 1 },
          planDigest: 'b'.repeat(64),
        }),
      })
      .resolves({ StatusCode: 200, Payload: encode(refused) });

    const run = await cli(['stop', '--cluster', 'stage', '--stage', 'stage'], {
      interactive: true,
      answer: true,
    });

    expect(run.code).toBe(3);
    expect(run.err).toContain('the plan changed since you confirmed it');
    expect(run.err).toContain('nothing was changed. Run the command again to see the new plan');
  });

  it('prints one JSON document with --json, the report as the function returned it, also after confirming', async () => {
    const returned = {
      ...REPORT,
      summary: { ...REPORT.summary, unchanged: 1200 },
      omitted: { unchanged: 1200 },
    };
    lambda
      .on(InvokeCommand)
      .resolvesOnce({
        StatusCode: 200,
        Payload: encode({ ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } }),
      })
      .resolves({ StatusCode: 200, Payload: encode(returned) });

    const run = await cli(['stop', '--cluster', 'stage', '--json'], { interactive: true, answer: true });

    expect(JSON.parse(run.out)).toEqual(returned);
    // The plan the person confirmed is on stderr, as a table.
    expect(run.err).toContain('ecs-scheduler stop (dry run): 0 changed, 1 planned');
  });

  it('refuses (exit 2) when the stage made the apply a dry run (DRY_RUN), saying nothing changed', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: encode({ ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } }),
    });

    const run = await cli(['stop', '--cluster', 'stage', '--stage', 'prod', '--yes']);

    expect(run.code).toBe(2);
    expect(run.err).toBe(
      'the function ran as a dry run although a change was asked for: DRY_RUN is true for it in this stage, so nothing changed. ' +
        'This is a refusal (exit 2): change DRY_RUN for the stage to let it act, or use --dry-run to only look.',
    );
  });

  it('does not ask to apply a plan the deployed function will not carry out (DRY_RUN=true): shows it and exits 2', async () => {
    // Prepare: prod's function has DRY_RUN=true; both its plan and any "apply" would be dry runs
    const planned = { ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } };
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(planned) });
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ Environment: { Variables: { DRY_RUN: 'true', PROTECTED_TAGS: '' } }, Timeout: 300 });

    // Act
    const run = await cli(['stop', '--cluster', 'shop', '--stage', 'prod'], {
      interactive: true,
      answer: true,
    });
    const json = await cli(['stop', '--cluster', 'shop', '--stage', 'prod', '--json'], {
      interactive: true,
      answer: true,
    });

    // Assess
    expect(run.questions).toEqual([]);
    expect(run.code).toBe(2);
    expect(run.out).toContain('ecs-scheduler stop (dry run): 0 changed, 1 planned');
    expect(run.err).toBe(
      'nightshift-prod-ecs-scheduler only plans: DRY_RUN is true for it in stage prod, so nothing was changed and nothing will be ' +
        '(the plan above is what it would do). Nothing was asked; this is a refusal (exit 2). Change DRY_RUN for the ' +
        'stage (a deploy) to let it act, or use --dry-run to only look.',
    );
    expect(payloads()).toEqual([
      { action: 'stop', clusters: ['shop'], dryRun: true },
      { action: 'stop', clusters: ['shop'], dryRun: true },
    ]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.out)).toMatchObject({ dryRun: true, summary: { planned: 1 } });
  });

  it('still asks when the deployed configuration cannot be read, and refuses (exit 2) when the apply comes back a dry run', async () => {
    // Prepare: ops may have only lambda:InvokeFunction
    const planned = { ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } };
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: encode(planned) });
    lambda
      .on(GetFunctionConfigurationCommand)
      .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));

    // Act
    const run = await cli(['stop', '--cluster', 'shop', '--stage', 'prod'], {
      interactive: true,
      answer: true,
    });

    // Assess
    expect(run.questions).toEqual(['Apply 1 planned change(s) in stage prod?']);
    expect(run.code).toBe(2);
    expect(run.err).toContain('the function ran as a dry run although a change was asked for');
  });

  it('exits 0 for --dry-run of a function whose DRY_RUN is true, and for a DRY_RUN run with nothing to change', async () => {
    const planned = { ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, planned: 1 } };
    const nothing = { ...REPORT, dryRun: true, summary: { ...REPORT.summary, changed: 0, unchanged: 1 } };
    lambda
      .on(InvokeCommand)
      .resolvesOnce({ StatusCode: 200, Payload: encode(planned) })
      .resolves({ StatusCode: 200, Payload: encode(nothing) });

    const dry = await cli(['stop', '--cluster', 'shop', '--stage', 'prod', '--dry-run']);
    const done = await cli(['stop', '--cluster', 'shop', '--stage', 'prod', '--yes']);

    expect([dry.code, done.code]).toEqual([0, 0]);
    expect(done.err).toBe('');
  });
});
