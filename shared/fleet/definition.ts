/**
 * The Amazon States Language definition of a fleet function's state machine, `nightshift-<stage>-<fn>-fleet`
 * (infra/fleet.yml; one STANDARD machine per fleet function). scripts/build.ts writes one per function to
 * dist/fleet-asl/<fn>.json, which the template reads with DefinitionSubstitutions for the ARNs.
 *
 *   Targets (the hub's `fleet` function, action `targets`: the run's (account, region) items; the run's
 *   header row) → Fan (Distributed Map over the items: each iteration invokes the function with its
 *   event plus `target` and `fleet: {run}`; a failed invocation is caught and recorded as a `failed` row)
 *   → Finish (the `fleet` function, action `finish`: one summary, the metrics, the run marked finished).
 *
 * Execution input (the schedule's or the CLI's): `{event, targets?, accounts?, regions?, maxConcurrency,
 * toleratedFailurePercentage, dryRun?, redriveOf?}`; the run id is the execution name.
 *
 * Limits it lives with: a state's input and output are at most 256 KiB (Step Functions quotas): the
 * item list (about 50 bytes a target) and the map's results (about 20 bytes a target: each iteration's
 * output is cut to a status) hold some 3,000 targets a run; Finish returns counts, never reports. No
 * `null` anywhere (`ResultPath: null`): osls drops nulls from the template, and a missing ResultPath
 * means `$`, the opposite. Concurrency and tolerance are read from the input
 * (MaxConcurrencyPath, ToleratedFailurePercentagePath): asl-validator wants an integer percentage, moto
 * refuses one, AWS takes both; the path forms suit all three and the stage params travel in the input.
 */
import { FLEET_FUNCTIONS, type FleetFunction } from './target.ts';

/** A state machine definition (JSON). */
export type Asl = {
  Comment?: string;
  StartAt: string;
  States: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
};

/** Where scripts/build.ts writes each function's definition, `<fn>.json`, for infra/fleet.yml. */
export const FLEET_ASL_DIR = 'dist/fleet-asl';

/** The placeholders filled in by the template's DefinitionSubstitutions. */
export const SUBSTITUTIONS = {
  functionArn: '${FunctionArn}',
  fleetFunctionArn: '${FleetFunctionArn}',
  table: '${LeaseTable}',
} as const;

export interface FleetDefinitionOptions {
  /** The function every iteration invokes. */
  functionArn: string;
  /** The hub's `fleet` function (targets, finish). */
  fleetFunctionArn: string;
  /** The hub's lease table, where a failed invocation's row is written. */
  table: string;
}

/**
 * What every iteration's function receives: the run's event with `target` and `fleet` added
 * (`{...event, target, fleet: {run}}`), built by the ItemSelector and merged here.
 */
export const WORK_PAYLOAD = 'States.JsonMerge($.event, $.extra, false)';

/**
 * Lambda errors worth another try: throttling (a function's reserved concurrency, the account's
 * concurrency) and Lambda's own transient faults (AWS: "Handle transient Lambda service exceptions").
 * Not the function's own errors: a run that threw is reported, not repeated.
 */
export const RETRIED_LAMBDA_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
];

/**
 * Throttled: the function's reserved concurrency is taken (1 for the serial functions, 0 with the kill
 * switch on) or the account's. Tried again every 20 s for about half an hour, at a steady pace rather
 * than a growing one, so that a function that runs one target at a time still works through a fleet, one
 * target after another; a run the kill switch stops ends as `failed` rows, each without a call made.
 */
export const THROTTLED = 'Lambda.TooManyRequestsException';
const THROTTLED_RETRY = { ErrorEquals: [THROTTLED], IntervalSeconds: 20, MaxAttempts: 90, BackoffRate: 1 };

/** The longest one target may run: Lambda's maximum of 15 minutes and a margin. */
const WORK_TIMEOUT_SECONDS = 960;

const lambdaTask = (functionArn: string, payload: Record<string, unknown>) => ({
  Type: 'Task',
  Resource: 'arn:aws:states:::lambda:invoke',
  Parameters: { FunctionName: functionArn, Payload: payload },
});

const lambdaRetry = (maxAttempts: number) => [
  { ErrorEquals: RETRIED_LAMBDA_ERRORS, IntervalSeconds: 2, MaxAttempts: maxAttempts, BackoffRate: 2 },
];

export const fleetDefinition = (fn: FleetFunction, options: FleetDefinitionOptions): Asl => {
  if (!FLEET_FUNCTIONS.includes(fn)) throw new Error(`${String(fn)} is not a fleet function`);
  return {
    Comment: `nightshift fleet run of ${fn}: every (account, region) target, each recording its own result`,
    StartAt: 'Targets',
    States: {
      Targets: {
        ...lambdaTask(options.fleetFunctionArn, {
          action: 'targets',
          function: fn,
          'run.$': '$$.Execution.Name',
          'startedAt.$': '$$.Execution.StartTime',
          'execution.$': '$',
        }),
        ResultSelector: { 'targets.$': '$.Payload.targets', 'ttl.$': '$.Payload.ttl' },
        ResultPath: '$.plan',
        Retry: [THROTTLED_RETRY, ...lambdaRetry(3)],
        Next: 'Fan',
      },
      Fan: {
        Type: 'Map',
        ItemProcessor: {
          ProcessorConfig: { Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' },
          StartAt: 'Work',
          States: {
            Work: {
              ...lambdaTask(options.functionArn, { 'Payload.$': WORK_PAYLOAD }),
              TimeoutSeconds: WORK_TIMEOUT_SECONDS,
              // The function recorded its own row; the iteration's output is only the status code, so the
              // map's results stay small (256 KiB).
              ResultSelector: { 'status.$': '$.StatusCode' },
              Retry: [THROTTLED_RETRY, ...lambdaRetry(3)],
              Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Failed' }],
              End: true,
            },
            // The invocation itself failed (threw, timed out, was throttled past the retries, the function
            // is missing): the function could not record its row, so the iteration records it.
            Failed: {
              Type: 'Pass',
              Parameters: {
                'account.$': '$.extra.target.account',
                'region.$': '$.extra.target.region',
                status: 'failed',
                'reason.$': "States.Format('{}: {}', $.error.Error, $.error.Cause)",
                'finishedAt.$': '$$.State.EnteredTime',
              },
              ResultPath: '$.result',
              Next: 'Record',
            },
            Record: {
              Type: 'Task',
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
                // A function that recorded its own row and then threw (every resource failed) keeps its row.
                ConditionExpression: 'attribute_not_exists(#s)',
                ExpressionAttributeNames: { '#s': 'scope' },
              },
              ResultSelector: { status: 'failed' },
              Catch: [
                {
                  ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'],
                  ResultPath: '$.kept',
                  Next: 'Kept',
                },
              ],
              Retry: [
                {
                  ErrorEquals: [
                    'DynamoDB.ProvisionedThroughputExceededException',
                    'DynamoDB.InternalServerError',
                  ],
                  IntervalSeconds: 1,
                  MaxAttempts: 5,
                  BackoffRate: 2,
                },
              ],
              Next: 'TargetFailed',
            },
            Kept: { Type: 'Pass', Result: { status: 'failed' }, Next: 'TargetFailed' },
            // The row is written; the iteration then fails, so the map counts it against
            // fleetToleratedFailurePercentage (past it the map stops, and Finish reports what ran).
            TargetFailed: {
              Type: 'Fail',
              Error: 'nightshift.TargetFailed',
              Cause: 'the invocation failed; its row in the hub says why',
            },
          },
        },
        ItemsPath: '$.plan.targets',
        ItemSelector: {
          'event.$': '$.event',
          extra: { 'target.$': '$$.Map.Item.Value', fleet: { 'run.$': '$$.Execution.Name' } },
          'ttl.$': '$.plan.ttl',
        },
        MaxConcurrencyPath: '$.maxConcurrency',
        ToleratedFailurePercentagePath: '$.toleratedFailurePercentage',
        Label: 'targets',
        ResultPath: '$.fan',
        // Past the tolerated failures the map stops: Finish still reports what ran and what did not.
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.mapError', Next: 'Finish' }],
        Next: 'Finish',
      },
      Finish: {
        ...lambdaTask(options.fleetFunctionArn, { action: 'finish', 'run.$': '$$.Execution.Name' }),
        ResultSelector: { 'run.$': '$.Payload.run', 'counts.$': '$.Payload.counts' },
        Retry: [THROTTLED_RETRY, ...lambdaRetry(3)],
        End: true,
      },
    },
  };
};

/** The definition with the template's placeholders, as scripts/build.ts writes it. */
export const templateDefinition = (fn: FleetFunction): Asl =>
  fleetDefinition(fn, {
    functionArn: SUBSTITUTIONS.functionArn,
    fleetFunctionArn: SUBSTITUTIONS.fleetFunctionArn,
    table: SUBSTITUTIONS.table,
  });
