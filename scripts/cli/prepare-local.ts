/**
 * Prepares a `--local` run: the configuration it runs with, the checks it must pass before it may
 * change anything, and its lease table. A local run is never less guarded than the deployed function
 * of its stage: against AWS, a run that would change something reads the deployed function's real
 * configuration and takes the stricter of it and serverless.yml; when it cannot know either, it
 * refuses to change anything.
 */
import { leaseTableName } from '#shared/lease.ts';
import { resolvedEndpointPlace } from './endpoints.ts';
import { FLEET_SERVICES, type FunctionName } from './functions.ts';
import { deployedFunction, deployedName, deployedSwitchedOff, type Target } from './invoke.ts';
import { applyLocalEnvironment, checkLeaseTable, deployedConfiguration } from './local.ts';
import { EXIT } from './output.ts';
import {
  describeEnvironment,
  localEnvironment,
  unresolvedGuardrails,
  withDeployed,
  withFleetEnvironment,
  type StageConfig,
} from './stage-config.ts';

/** Lambda's own limit, for a function whose timeout serverless.yml does not state as a number. */
const MAX_LAMBDA_SECONDS = 900;

export interface LocalRun {
  /** The function's DRY_RUN (or the operator's) makes it a dry run whatever was asked. */
  dryRun: boolean;
  /**
   * Whose DRY_RUN made it one: the stage's (serverless.yml or the deployed function: a change that was
   * asked for is refused, exit 2) or only the operator's own (they asked for a dry run).
   */
  dryRunBy?: 'stage' | 'operator';
  /** The deployed function's timeout: what the in-process Lambda context gives the run. */
  timeoutMs: number;
  /** The lease table (the hub's table: a fleet run's results go there too). */
  table: string;
  /** The stage's params, with a fleet run's `--param` overrides. */
  params: Record<string, string>;
}

export interface Asked {
  mutates: boolean;
  /**
   * A fleet run (`nightshift fleet run --local`): the stage's params with these overrides, the fleet's
   * variables (allowlist, protected-account words, external id), the services the fleet adds (STS, IAM,
   * Organizations), and the lease table always usable: its result rows go there, dry run or not.
   */
  fleet?: { overrides: Record<string, string> };
}

const HOW = 'Add --dry-run to see the plan, or run the deployed function (without --local).';

/**
 * Returns an exit code when the run must not go ahead (after saying why on stderr), or how to run it.
 * Its configuration is applied to this process's environment, where the in-process handler reads it.
 */
export const prepareLocal = async (
  io: { err: (text: string) => void; env: NodeJS.ProcessEnv },
  stage: { stage: string; serviceName: string },
  target: Target,
  fn: FunctionName,
  asked: Asked,
): Promise<{ code: number } | LocalRun> => {
  const read = await deployedConfiguration(fn, stage.stage, stage.serviceName, asked.fleet?.overrides);
  const { origin, timeoutSeconds, params } = read;
  const config = asked.fleet ? withFleetEnvironment(read.config, params) : read.config;
  const what = asked.fleet ? `a fleet run of ${fn}` : fn;
  const name = deployedName(target, fn);
  const refuse = (text: string, code: number = EXIT.usage) => {
    io.err(text);
    return { code };
  };
  // Where the SDK sends this process's calls, as it resolves them: from process.env (whatever the CLI
  // was given) and the shared config file.
  const place = await resolvedEndpointPlace(fn, process.env, asked.fleet ? FLEET_SERVICES : []);
  io.err(
    `--local: ${fn} runs with stage ${stage.stage}'s configuration from ${origin}: ${describeEnvironment(config.env)}` +
      (config.ownParams ? '' : ` (no params for stage ${stage.stage} there: the defaults apply)`) +
      (config.unresolved.length > 0
        ? `; not known locally, left as they are: ${config.unresolved.join(', ')}`
        : ''),
  );
  if (place.kind === 'mixed') {
    const text =
      `its calls would go partly to a local emulator (${place.local.join(', ')}) and partly elsewhere ` +
      `(${place.remote.join(', ')}). Point every endpoint at the emulator (AWS_ENDPOINT_URL, and no ` +
      'AWS_ENDPOINT_URL_<SERVICE> elsewhere), or set none of them to run against AWS.';
    if (asked.mutates || asked.fleet)
      return refuse(
        `refusing to run ${what} with --local: ${text} ` +
          (asked.fleet
            ? 'Its results would be recorded in one place and its calls made in another.'
            : 'A lease table in the emulator would not keep other runs off the real resources.'),
      );
    io.err(`--local: ${text} The lease table is neither created nor checked.`);
  }

  let base: StageConfig = config;
  let timeout = timeoutSeconds ?? MAX_LAMBDA_SECONDS;
  // The stage's DRY_RUN (or the operator's) makes it a dry run whatever the deployed function says.
  const dryAnyway = localEnvironment(config, io.env).env.DRY_RUN === 'true';
  // A run that would change something must know how guarded the deployed function is.
  const mustKnow = asked.mutates && !dryAnyway;
  if (place.kind === 'aws') {
    const unknown = unresolvedGuardrails(config);
    if (mustKnow && unknown.length > 0) {
      return refuse(
        `refusing to change anything with --local: ${unknown.join(' and ')} of ${fn} in stage ${stage.stage} ` +
          `cannot be known from ${origin} (${unknown.map((v) => `${v}: ${JSON.stringify(config.unresolvedValues[v])}`).join(', ')}), ` +
          `so this run could be less guarded than ${name}. ${HOW}`,
      );
    }
    // A dry run reads it too, so that its plan is the one the change would make, and says so when it
    // cannot.
    const deployed = await deployedFunction(target, fn);
    const merged = 'unknown' in deployed ? deployed : withDeployed(config, deployed.env, name);
    if ('unknown' in merged) {
      if (mustKnow)
        return refuse(
          `refusing to change anything with --local: cannot read the configuration of the deployed ${name} ` +
            `(${merged.unknown}), so this run could be less guarded than it (its DRY_RUN, its PROTECTED_TAGS, ` +
            `params given at deploy time with --param). ${HOW}`,
        );
      io.err(
        `--local: cannot read the configuration of the deployed ${name} (${merged.unknown}): this dry run plans with serverless.yml's alone`,
      );
    } else if ('refusal' in merged) {
      if (mustKnow) return refuse(`refusing to change anything with --local: ${merged.refusal}. ${HOW}`);
      io.err(`--local: ${merged.refusal}; this dry run plans with serverless.yml's configuration alone`);
    } else {
      io.err(
        `--local: read the configuration of the deployed ${name}: ` +
          (merged.notes.length === 0
            ? 'the same as serverless.yml'
            : 'it differs, and the stricter or the deployed value applies'),
      );
      for (const note of merged.notes) io.err(`--local: ${note}`);
      base = { ...config, env: merged.env };
      if ('timeoutSeconds' in deployed && deployed.timeoutSeconds) timeout = deployed.timeoutSeconds;
    }
  }
  const local = localEnvironment(base, io.env);
  for (const note of local.notes) io.err(`--local: ${note}`);
  if (JSON.stringify(local.env) !== JSON.stringify(config.env))
    io.err(`--local: so it runs with ${describeEnvironment(local.env)}`);
  // Nothing will change whatever the person answers: say so, and do not ask.
  const forcedDryRun = asked.mutates && local.env.DRY_RUN === 'true';
  if (forcedDryRun)
    io.err(
      `--local: DRY_RUN=true for ${fn} in stage ${stage.stage}: this run is a dry run, and nothing will change.`,
    );
  const mutates = asked.mutates && !forcedDryRun;
  const table = local.env.LEASE_TABLE ?? leaseTableName(stage.stage, stage.serviceName);
  const go: LocalRun = {
    dryRun: forcedDryRun,
    ...(forcedDryRun && { dryRunBy: base.env.DRY_RUN === 'true' ? 'stage' : 'operator' }),
    timeoutMs: timeout * 1000,
    table,
    params,
  };
  if (mutates && config.killSwitch) {
    return refuse(
      `refusing to run ${fn} with --local: stage ${stage.stage}'s kill switch is on (killSwitch 'true' in ${origin}), so its functions change nothing, and neither does a local run. Add --dry-run to see the plan.`,
    );
  }
  // The kill switch flipped at run time (reserved concurrency 0) is not in serverless.yml: ask Lambda.
  if (mutates && place.kind === 'aws') {
    const switched = await deployedSwitchedOff(target, fn);
    if ('unknown' in switched) {
      return refuse(
        `refusing to run ${fn} with --local: could not check whether ${name} is switched off (${switched.unknown}); ` +
          'while that is unknown, a local run changes nothing (your credentials need lambda:GetFunctionConcurrency on it). ' +
          'Add --dry-run to see the plan.',
      );
    }
    if (switched.off) {
      return refuse(
        `refusing to run ${fn} with --local: ${name} is switched off (reserved concurrency 0: the kill switch), and a local run is no exception. Add --dry-run to see the plan.`,
      );
    }
  }
  applyLocalEnvironment(fn, local.env);
  // Dry runs take no leases; a lease table in a local emulator is created either way (carry-over reads it).
  // A fleet run records its results there, dry run or not.
  if (place.kind === 'mixed' || (!mutates && !asked.fleet && place.kind === 'aws')) return go;
  const check = await checkLeaseTable(table, place.kind === 'local');
  if (check.ok) {
    if (check.created) io.err(`--local: created the lease table ${table} in the local emulator`);
    return go;
  }
  if (!mutates && !asked.fleet) return go;
  return refuse(
    `refusing to run ${what} with --local: cannot use the lease table ${table} (${check.reason}). ` +
      (asked.fleet && !mutates
        ? 'A fleet run records its results there. '
        : 'Without its leases another run could act on the same resources at the same time. ') +
      'Add --dry-run to see the plan, or run the deployed function (without --local).',
    EXIT.failed,
  );
};
