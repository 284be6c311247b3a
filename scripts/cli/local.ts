/**
 * `--local`: a function's handler run in this process with the operator's credentials, configured as
 * the deployed function is in its stage, taking its leases in the stage's lease table.
 */
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { hostname, userInfo } from 'node:os';
import { dynamoDbClient } from '#shared/aws/dynamodb.ts';
import { errorMessage } from '#shared/errors.ts';
import { ensureLocalLeaseTable } from '#shared/lease-table.ts';
import { runsHoldingLeases } from '#shared/lease.ts';
import type { FunctionName } from './functions.ts';
import { readServerless } from './serverless-source.ts';
import { stageConfig, stageParams, type StageConfig } from './stage-config.ts';

/**
 * Who a local run is, as its leases show it to whoever it blocks: `local:ops@laptop`, so a holder reads
 * `ecs-scheduler run 2f8e… (local:ops@laptop)` rather than a function name nobody deployed.
 */
export const localFunctionName = (env: NodeJS.ProcessEnv = process.env): string => {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): fall back to what the shell says.
    user = env.USER ?? env.LOGNAME;
  }
  return `local:${user || 'unknown'}@${hostname() || 'unknown-host'}`;
};

const applied = new Map<FunctionName, string>();

/**
 * Sets the environment an in-process handler reads. A handler parses its configuration once per
 * process (as at a Lambda cold start), so a second local run of the same function in one process with
 * another configuration would silently run with the first: refused instead. The CLI runs one command
 * per process, so only a program driving runCli twice can meet this.
 */
export const applyLocalEnvironment = (fn: FunctionName, env: Record<string, string>): void => {
  const text = JSON.stringify(Object.entries(env).sort(([a], [b]) => a.localeCompare(b)));
  const before = applied.get(fn);
  if (before !== undefined && before !== text) {
    throw new Error(
      `${fn} already ran in this process with another configuration; run each stage's --local command in its own process`,
    );
  }
  applied.set(fn, text);
  Object.assign(process.env, env);
};

export type LeaseTableCheck = { ok: true; created: boolean } | { ok: false; reason: string };

/**
 * Makes sure a local run can take its leases. Against a local emulator (moto; `emulator`: every endpoint
 * the run uses is local, endpoints.ts), a missing table is created as the stack would create it, so
 * local runs need no deploy. Against AWS, the table is the stack's: one read proves it is there and
 * readable with these credentials (a run needs GetItem, PutItem and DeleteItem on it); the answer says
 * why not otherwise.
 */
export const checkLeaseTable = async (table: string, emulator: boolean): Promise<LeaseTableCheck> => {
  const client = dynamoDbClient();
  try {
    if (emulator) return { ok: true, created: await ensureLocalLeaseTable(client, table) };
    await client.send(
      new GetItemCommand({
        TableName: table,
        // No item has this key: the read costs one read unit and changes nothing.
        Key: { scope: { S: 'nightshift-cli#reachable' } },
        ConsistentRead: true,
      }),
    );
    return { ok: true, created: false };
  } catch (error) {
    const name = (error as Error).name;
    const hint =
      name === 'ResourceNotFoundException'
        ? ' — is the stage deployed in this region? (--region)'
        : name === 'AccessDeniedException'
          ? ' — your credentials need dynamodb:GetItem, PutItem and DeleteItem on it'
          : '';
    return { ok: false, reason: `${errorMessage(error)}${hint}` };
  }
};

/**
 * The configuration of `fn` in `stage`, from serverless.yml (from source, or as built into the bin),
 * its Lambda timeout there in seconds (undefined when it is not a plain number), and the stage's params
 * (`overrides` laid over them: a fleet run's `--param`).
 */
export const deployedConfiguration = async (
  fn: FunctionName,
  stage: string,
  serviceName: string,
  overrides: Record<string, string> = {},
): Promise<{
  config: StageConfig;
  origin: string;
  timeoutSeconds: number | undefined;
  params: Record<string, string>;
}> => {
  const { file, origin } = await readServerless();
  return {
    config: stageConfig(file, fn, stage, serviceName, overrides),
    params: stageParams(file, stage, overrides),
    origin,
    timeoutSeconds: file.timeouts?.[fn],
  };
};

/**
 * Releases every lease the runs in this process hold (shared/lease.ts `runsHoldingLeases`): on Ctrl-C
 * or SIGTERM, so an interrupted local run does not block its clusters, groups or targets until the
 * leases expire. Bounded: a table that does not answer within `withinMs` leaves them to expire.
 */
export const releaseHeldLeases = async (withinMs = 10_000): Promise<{ runs: number; problems: string[] }> => {
  const runs = new Set(runsHoldingLeases);
  const problems: string[] = [];
  const release = async () => {
    // A run may still take a lease while others are released (its claims run a few at a time): go
    // again until none is held.
    for (let round = 0; round < 5 && runsHoldingLeases.size > 0; round++) {
      for (const run of runsHoldingLeases) runs.add(run);
      const all = await Promise.all([...runsHoldingLeases].map((run) => run.releaseAll()));
      problems.push(...all.flat());
    }
  };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      problems.push(
        `the lease table did not answer within ${withinMs / 1000} s; the leases expire on their own`,
      );
      resolve();
    }, withinMs);
  });
  await Promise.race([release(), late]).finally(() => clearTimeout(timer));
  return { runs: runs.size, problems };
};
