/**
 * What the hub's `fleet` function accepts: the two steps of a fleet state machine around its
 * Distributed Map (shared/fleet/definition.ts). `targets` carries the execution's input as given by the
 * schedule or the CLI; `finish` names the run.
 */
import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { parseInput } from '#shared/input.ts';
import { FLEET_FUNCTIONS, RUN_ID, Target } from '#shared/fleet/target.ts';

const runId = z.string().check(z.regex(RUN_ID, 'expected a run id of letters, digits, - and _ (at most 80)'));

/** Distributed Map's MaxConcurrency may be up to 10,000 (0 would mean no limit: refused here). */
export const MAX_FLEET_CONCURRENCY = 10_000;

/** The execution input of a fleet state machine. */
export const FleetExecutionInput = z.strictObject({
  /** The single-account event every target runs; `target` and `fleet` are added per target. */
  event: z
    .record(z.string(), z.unknown())
    .check(
      z.refine(
        (e) => !('target' in e) && !('fleet' in e),
        'the event must not carry target or fleet: the run adds them',
      ),
    ),
  /** Exactly these targets (a redrive): no stage lists, no Organizations. */
  targets: z.optional(
    z.array(Target).check(z.minLength(1, 'list at least one target, or leave targets out')),
  ),
  /** Replace the stage's accounts (fleetAccounts and fleetOrganizationUnits) for this run. */
  accounts: z.optional(z.array(z.string()).check(z.minLength(1))),
  /** Replace the stage's regions (fleetRegions) for this run. */
  regions: z.optional(z.array(z.string()).check(z.minLength(1))),
  maxConcurrency: z.number().check(z.int(), z.minimum(1), z.maximum(MAX_FLEET_CONCURRENCY)),
  toleratedFailurePercentage: z.number().check(z.minimum(0), z.maximum(100)),
  dryRun: z.optional(z.boolean()),
  redriveOf: z.optional(runId),
});
export type FleetExecutionInput = Infer<typeof FleetExecutionInput>;

export const FleetEvent = z.discriminatedUnion('action', [
  z.strictObject({
    action: z.literal('targets'),
    function: z.enum(FLEET_FUNCTIONS),
    run: runId,
    /** The execution's start ($$.Execution.StartTime): the run's start. */
    startedAt: z.optional(z.string().check(z.iso.datetime({ offset: true }))),
    execution: FleetExecutionInput,
  }),
  z.strictObject({ action: z.literal('finish'), run: runId }),
]);
export type FleetEvent = Infer<typeof FleetEvent>;

export const parseFleetEvent = (event: unknown): FleetEvent => parseInput(FleetEvent, event);
