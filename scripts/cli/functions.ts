/**
 * The deployed functions the CLI drives, their payload contracts, and how to run each in-process
 * (`--local`). Payloads are checked against the same schemas the functions use before anything is sent.
 */
import { parseInput } from '#shared/input.ts';
import type { Report } from '#shared/report.ts';
import { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { CopyAction } from '#events/rds-snapshot-copy/schema.ts';
import { SnapshotTagsAction } from '#events/snapshot-tags/schema.ts';
import { RotateInput } from '#events/instance-rotation/schema.ts';
import { RestartAction } from '#events/ssm-restart/schema.ts';

export type FunctionName =
  'ecs-scheduler' | 'rds-snapshot-copy' | 'snapshot-tags' | 'instance-rotation' | 'ssm-restart';

export type Handler = (event: unknown, context: unknown) => Promise<Report>;

/** Refuses a payload the function would refuse, with the same message, before any AWS call. */
export const checkPayload = (fn: FunctionName, payload: unknown): void => {
  const schema = {
    'ecs-scheduler': SchedulerInput,
    'rds-snapshot-copy': CopyAction,
    'snapshot-tags': SnapshotTagsAction,
    'instance-rotation': RotateInput,
    'ssm-restart': RestartAction,
  }[fn];
  parseInput(schema, payload);
};

/** The handler of a function, imported on demand so `--local` loads only what it runs. */
export const localHandler = async (fn: FunctionName): Promise<Handler> => {
  switch (fn) {
    case 'ecs-scheduler':
      return (await import('#functions/ecs-scheduler/handler.ts')).handler as unknown as Handler;
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
