/**
 * The deployed functions the CLI drives, their payload contracts, and how to run each in-process
 * (`--local`). Payloads are checked against the same schemas the functions use before anything is sent.
 */
import { parseInput } from '#shared/input.ts';
import type { Report } from '#shared/report.ts';
import { EcsSchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { CopyAction } from '#events/rds-snapshot-copy/schema.ts';
import { SnapshotTagsAction } from '#events/snapshot-tags/schema.ts';
import { RotateInput } from '#events/instance-rotation/schema.ts';
import { RestartAction } from '#events/ssm-restart/schema.ts';
import { RdsSchedulerInput } from '#events/rds-scheduler/schema.ts';

export type FunctionName =
  | 'ecs-scheduler'
  | 'rds-scheduler'
  | 'rds-snapshot-copy'
  | 'snapshot-tags'
  | 'instance-rotation'
  | 'ssm-restart';

export type Handler = (event: unknown, context: unknown) => Promise<Report>;

/**
 * The AWS services (SDK `serviceId`s) each function's handler calls, besides those every run uses
 * (RUN_SERVICES): what decides whether a `--local` run is against a local emulator (endpoints.ts).
 * test/unit/cli-endpoints.test.ts checks it against the clients each function folder imports.
 */
export const FUNCTION_SERVICES: Record<FunctionName, readonly string[]> = {
  // RDS read-only: a start waits for its environment's databases; CloudWatch: silence while parked;
  // EventBridge and Scheduler read-only: the scheduled tasks a stop warns about.
  'ecs-scheduler': [
    'ECS',
    'Application Auto Scaling',
    'Auto Scaling',
    'RDS',
    'CloudWatch',
    'EventBridge',
    'Scheduler',
  ],
  // ECS and Auto Scaling read-only: the environment gate of a stop.
  'rds-scheduler': ['RDS', 'ECS', 'Auto Scaling', 'CloudWatch'],
  'rds-snapshot-copy': ['RDS'],
  'snapshot-tags': ['EC2', 'RDS'],
  'instance-rotation': ['Auto Scaling', 'EC2', 'ECS'],
  'ssm-restart': ['Auto Scaling', 'CloudWatch', 'EC2', 'ECS', 'SSM'],
};

/**
 * What every run uses: the lease table (DynamoDB), the run summary (SNS), and the CLI's own checks of
 * the deployed function (Lambda).
 */
export const RUN_SERVICES: readonly string[] = ['DynamoDB', 'SNS', 'Lambda'];

/**
 * What a fleet run uses besides: every target assumes its spoke role (STS) and reads the account's alias
 * (IAM) and name (Organizations) for the allowlist; the fleet's accounts may come from organizational
 * units (Organizations).
 */
export const FLEET_SERVICES: readonly string[] = ['STS', 'IAM', 'Organizations'];

/** Refuses a payload the function would refuse, with the same message, before any AWS call. */
export const checkPayload = (fn: FunctionName, payload: unknown): void => {
  const schema = {
    'ecs-scheduler': EcsSchedulerInput,
    'rds-scheduler': RdsSchedulerInput,
    'rds-snapshot-copy': CopyAction,
    'snapshot-tags': SnapshotTagsAction,
    'instance-rotation': RotateInput,
    'ssm-restart': RestartAction,
  }[fn];
  parseInput(schema, payload);
};

const loaded = new Map<FunctionName, Promise<Handler>>();

/**
 * The handler of a function, imported on demand so `--local` loads only what it runs, once: a fleet run
 * starts many runs of it at the same time.
 */
export const localHandler = (fn: FunctionName): Promise<Handler> => {
  let handler = loaded.get(fn);
  if (!handler) {
    handler = importHandler(fn);
    loaded.set(fn, handler);
  }
  return handler;
};

const importHandler = async (fn: FunctionName): Promise<Handler> => {
  switch (fn) {
    case 'ecs-scheduler':
      return (await import('#functions/ecs-scheduler/handler.ts')).handler as unknown as Handler;
    case 'rds-scheduler':
      return (await import('#functions/rds-scheduler/handler.ts')).handler as unknown as Handler;
    case 'rds-snapshot-copy':
      return (await import('#functions/rds-snapshot-copy/handler.ts')).handler as unknown as Handler;
    case 'snapshot-tags':
      return (await import('#functions/snapshot-tags/handler.ts')).handler as unknown as Handler;
    case 'instance-rotation':
      return (await import('#functions/instance-rotation/handler.ts')).handler as unknown as Handler;
    case 'ssm-restart':
      return (await import('#functions/ssm-restart/handler.ts')).handler as unknown as Handler;
  }
};
