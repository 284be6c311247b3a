import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import {
  fleetDefinition,
  RETRIED_LAMBDA_ERRORS,
  THROTTLED,
  templateDefinition,
  WORK_PAYLOAD,
  type Asl,
} from '#shared/fleet/definition.ts';
import { FLEET_FUNCTIONS } from '#shared/fleet/target.ts';

// asl-validator adds QueryLanguage to every state of what it is given: it gets a copy.
const validate = (definition: unknown) =>
  aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });

const options = {
  functionArn: 'arn:aws:lambda:eu-central-1:123456789012:function:nightshift-dev-ecs-scheduler',
  fleetFunctionArn: 'arn:aws:lambda:eu-central-1:123456789012:function:nightshift-dev-fleet',
  table: 'nightshift-dev-leases',
};
type State = Record<string, unknown>;
const fan = (asl: Asl) => asl.States.Fan as State & { ItemProcessor: { States: Record<string, State> } };

describe('the fleet state machine definition', () => {
  it.each(FLEET_FUNCTIONS)('is valid ASL for %s, with real ARNs and with the template placeholders', (fn) => {
    for (const definition of [fleetDefinition(fn, options), templateDefinition(fn)]) {
      const result = validate(definition);
      expect(result.errorsText('\n')).toBe('');
      expect(result.isValid).toBe(true);
    }
  });

  it('is refused by the validator when it is broken (so the check above can fail)', () => {
    const dangling = fleetDefinition('ecs-scheduler', options);
    (dangling.States.Targets as State).Next = 'Nowhere';
    expect(validate(dangling).isValid).toBe(false);
    expect(validate(dangling).errors.map((e) => e['Error code'])).toContain('MISSING_TRANSITION_TARGET');

    const both = fleetDefinition('ecs-scheduler', options);
    fan(both).ToleratedFailurePercentage = 10;
    expect(validate(both).isValid).toBe(false);

    const badMode = fleetDefinition('ecs-scheduler', options);
    (fan(badMode).ItemProcessor as unknown as State).ProcessorConfig = { Mode: 'NOPE' };
    expect(validate(badMode).isValid).toBe(false);
  });

  it('fans out in a Distributed Map of STANDARD child executions, with concurrency and tolerance from the input', () => {
    const map = fan(fleetDefinition('rds-snapshot-copy', options));
    expect(map).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.plan.targets',
      MaxConcurrencyPath: '$.maxConcurrency',
      ToleratedFailurePercentagePath: '$.toleratedFailurePercentage',
      ItemSelector: {
        'event.$': '$.event',
        extra: { 'target.$': '$$.Map.Item.Value', fleet: { 'run.$': '$$.Execution.Name' } },
        'ttl.$': '$.plan.ttl',
      },
      // Past its tolerance the map fails; Finish still reports
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Finish' }],
      Next: 'Finish',
    });
    expect(map.ItemProcessor).toMatchObject({
      ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
    });
    // Numbers are never in the definition: asl-validator wants integers where moto refuses them
    expect(map.MaxConcurrency).toBeUndefined();
    expect(map.ToleratedFailurePercentage).toBeUndefined();
  });

  it('invokes the function with the merged event, retries only throttling and Lambda faults, and records any other failure', () => {
    const { Work, Failed, Record } = fan(fleetDefinition('ecs-scheduler', options)).ItemProcessor.States;
    expect(Work).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: options.functionArn, Payload: { 'Payload.$': WORK_PAYLOAD } },
      Retry: [
        { ErrorEquals: [THROTTLED], IntervalSeconds: 20, BackoffRate: 1 },
        { ErrorEquals: RETRIED_LAMBDA_ERRORS, BackoffRate: 2 },
      ],
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Failed' }],
    });
    // A throttled target waits its turn for about half an hour, at a steady pace
    const throttled = (Work?.Retry as { MaxAttempts: number; IntervalSeconds: number }[])[0];
    expect((throttled?.MaxAttempts ?? 0) * (throttled?.IntervalSeconds ?? 0)).toBeGreaterThanOrEqual(1800);
    expect(RETRIED_LAMBDA_ERRORS).not.toContain('States.ALL');
    expect(Failed).toMatchObject({ Type: 'Pass', Next: 'Record', Parameters: { status: 'failed' } });
    expect(Record).toMatchObject({
      Resource: 'arn:aws:states:::dynamodb:putItem',
      Parameters: {
        TableName: options.table,
        Item: {
          scope: {
            'S.$':
              "States.Format('fleet#{}#{}#{}', $.extra.fleet.run, $.extra.target.account, $.extra.target.region)",
          },
          result: { 'S.$': 'States.JsonToString($.result)' },
          ttl: { 'N.$': '$.ttl' },
        },
      },
      Next: 'TargetFailed',
    });
  });

  it('fails an iteration whose invocation failed once its row is written, so the tolerated percentage counts it', () => {
    const { Record, Kept, TargetFailed } = fan(fleetDefinition('ecs-scheduler', options)).ItemProcessor
      .States;
    expect(Record?.Next).toBe('TargetFailed');
    expect(Kept?.Next).toBe('TargetFailed');
    expect(TargetFailed).toMatchObject({ Type: 'Fail', Error: 'nightshift.TargetFailed' });
  });

  it('holds no null, which osls would drop from the template (a missing ResultPath means $)', () => {
    for (const fn of FLEET_FUNCTIONS) expect(JSON.stringify(templateDefinition(fn))).not.toContain('null');
  });
});
