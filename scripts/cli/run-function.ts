/**
 * Runs one function command (`stop`, `wake`, `restart`, …): check the payload, plan, ask, run by Lambda
 * Invoke or in-process (`--local`), report. Imported by program.ts when such a command runs, with the
 * Lambda client, the payload schemas and the report tables, so `nightshift --help` loads none of them.
 */
import type { Report } from '#shared/report.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import { checkPayload, type FunctionName } from './functions.ts';
import { compact, useRegion, type Globals } from './globals.ts';
import { deployedFunction, deployedName, invoke, type Target } from './invoke.ts';
import { FunctionFailedError, InvokeRefusedError, OutcomeUnknownError } from './invoke-errors.ts';
import { EXIT, onlyPlans, renderReport, verdict } from './output.ts';
import { prepareLocal } from './prepare-local.ts';
import type { Io } from './program.ts';

/** Runs one function command: check, (dry run, confirm,) run, report. Returns the exit code. */
export const runFunction = async (
  io: Io,
  g: Globals,
  fn: FunctionName,
  payload: Record<string, unknown>,
  options: { mutates: boolean; region?: string },
): Promise<number> => {
  const target: Target = {
    service: g.serviceName,
    stage: g.stage,
    local: g.local === true,
    ...((options.region ?? g.region) && { region: options.region ?? g.region }),
  };
  // In-process handlers and their clients run in the region asked for, like the deployed function.
  if (target.local && target.region) useRegion(io, target.region);
  const dryRun = g.dryRun === true;
  let request = compact({ ...payload, ...(dryRun && { dryRun: true }) });
  checkPayload(fn, request);
  let mutates = options.mutates && !dryRun;
  if (mutates && g.yes !== true && !io.interactive) {
    io.err(
      `refusing to run ${fn} without --yes: not attached to a terminal, so nobody can confirm. Add --dry-run to see the plan.`,
    );
    return EXIT.usage;
  }
  let forcedDryRun = false;
  /** The stage's DRY_RUN (not the operator's) made a run that was asked to change things a dry run. */
  let stageDryRun = false;
  // Deployed functions use their own timeout; an in-process run gets the same (prepareLocal).
  let timeoutMs = 900_000;
  if (target.local) {
    const ready = await prepareLocal(io, g, target, fn, { mutates });
    if ('code' in ready) return ready.code;
    timeoutMs = ready.timeoutMs;
    if (ready.dryRun) {
      // The function's DRY_RUN makes it a dry run anyway; the input says so too.
      forcedDryRun = true;
      stageDryRun = ready.dryRunBy === 'stage';
      mutates = false;
      request = { ...request, dryRun: true };
      checkPayload(fn, request);
    }
  }
  const where = target.local ? `${fn} (local)` : deployedName(target, fn);
  const call = async (body: Record<string, unknown>, label: string): Promise<Report> => {
    const done = io.interactive ? io.progress(`${label} ${where}…`) : () => undefined;
    try {
      return await invoke(target, fn, body, { mutates: body.dryRun !== true, timeoutMs });
    } finally {
      done();
    }
  };
  // With --json, stdout carries exactly one document: the report of the last call, as the function
  // returned it. The plan shown for confirmation is for the person, on stderr.
  const table = (report: Report) => renderReport(fn, report, io.width);
  const show = (report: Report) => io.out(g.json ? JSON.stringify(report, null, 2) : table(report));

  /**
   * The function failed as a whole (it threw), or the outcome of a change is unknown: with --json,
   * stdout still carries one document, `{ "error": { type, message, function } }`; the person reads
   * the message on stderr.
   */
  const failedRun = (error: unknown, changing: boolean): number => {
    if (error instanceof FunctionFailedError) {
      if (g.json)
        io.out(
          JSON.stringify(
            { error: { type: error.errorType, message: error.reason, function: error.functionName } },
            null,
            2,
          ),
        );
      io.err(error.message);
      // Every resource failed (RunFailedError), or it stopped part way (a timeout, a crash): then it may
      // have changed some things before it stopped.
      if (changing && error.errorType !== 'RunFailedError')
        io.err(
          'it may have changed some things before it stopped: look with `nightshift status` and the same command with --dry-run before you run it again.',
        );
      return EXIT.failed;
    }
    if (g.json) {
      const type = error instanceof Error ? error.name : 'Error';
      io.out(
        JSON.stringify(
          {
            error: { type, message: error instanceof Error ? error.message : String(error), function: where },
          },
          null,
          2,
        ),
      );
    }
    if (error instanceof OutcomeUnknownError) {
      io.err(error.message);
      return EXIT.failed;
    }
    if (error instanceof InvokeRefusedError) {
      io.err(error.message);
      return error.exitCode;
    }
    throw error;
  };

  let apply: Record<string, unknown> = request;
  if (mutates && g.yes !== true) {
    // Show what would happen first, then ask: the same plan a person would get from --dry-run.
    let plan: Report;
    try {
      plan = await call({ ...request, dryRun: true }, 'planning with');
    } catch (error) {
      return failedRun(error, false);
    }
    if (plan.summary.planned === 0) {
      show(plan);
      io.err('nothing to change.');
      const result = verdict(plan, { dryRun: false, planOfChange: true });
      for (const line of result.lines) io.err(line);
      return result.code;
    }
    // A deployed function with DRY_RUN=true (prod, typically) only ever plans: do not ask to apply a
    // change it will not make. Its configuration needs lambda:GetFunctionConfiguration; without it the
    // question is asked, and the apply's report (dryRun: true) says so and refuses (verdict).
    if (!target.local) {
      const deployed = await deployedFunction(target, fn);
      if ('env' in deployed && deployed.env.DRY_RUN?.trim() === 'true') {
        show(plan);
        io.err(onlyPlans(where, g.stage));
        return EXIT.usage;
      }
    }
    (g.json ? io.err : io.out)(table(plan));
    const label = target.local ? 'with your credentials' : `in stage ${g.stage}`;
    if (!(await io.confirm(`Apply ${plan.summary.planned} planned change(s) ${label}?`))) {
      if (g.json) show(plan);
      io.err('nothing changed.');
      return EXIT.ok;
    }
    // The apply plans afresh; with the digest of the plan confirmed, the function refuses a different
    // one. Added after checkPayload: a function that returns a digest accepts it back, and one that does
    // not (deployed before digests) is sent none.
    if (typeof plan.planDigest === 'string' && PLAN_DIGEST.test(plan.planDigest))
      apply = { ...request, planDigest: plan.planDigest };
  }
  let report: Report;
  try {
    report = await call(apply, dryRun || forcedDryRun ? 'planning with' : 'running');
  } catch (error) {
    return failedRun(error, apply.dryRun !== true);
  }
  show(report);
  // A dry run the operator asked for (--dry-run, their own DRY_RUN) is done; one the stage's DRY_RUN
  // imposed on a change is refused (verdict).
  const result = verdict(report, { dryRun: dryRun || (forcedDryRun && !stageDryRun) });
  for (const line of result.lines) io.err(line);
  return result.code;
};
