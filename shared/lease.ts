import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDbOnDemand } from './aws/dynamodb-on-demand.ts';
import { onDemand } from './on-demand.ts';
import { formatAge } from './duration.ts';
import { errorMessage } from './errors.ts';

/**
 * Leases: one item per scope (a cluster, an Auto Scaling group, a restart target, by ARN) in the stage's
 * lease table, `nightshift-<stage>-leases`, taken with a conditional write before a run reads the scope's
 * state and released when it is done. Two runs never act on one scope at once, whoever started them
 * (schedules, the CLI with --local, a retried event). A lease expires on its own (`expiresAt`, checked
 * in the condition; DynamoDB's TTL on `ttl` only tidies up, days later), so a crashed run never blocks
 * a scope for ever. Nothing waits for a lease: a run that cannot take one skips that scope and says who
 * holds it and since when.
 */

/** The attribute DynamoDB's TTL deletes items by (epoch seconds). serverless.yml enables it. */
export const TTL_ATTRIBUTE = 'ttl';
/** Items linger this long past their expiry before TTL removes them: who held what, for a post-mortem. */
export const LINGER_SECONDS = 86_400;
/**
 * A lease counts as expired only this long after its `expiresAt`, by the taker's clock: a laptop whose
 * clock runs a little fast must not take a lease a Lambda still holds. (AWS itself refuses requests
 * signed more than 5 minutes off, so no caller is further off than that.)
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** Who takes leases: one per run. */
export interface LeaseOwner {
  /** Readable, for whoever loses: `ecs-scheduler run 2f8e6c1a (nightshift-dev-ecs-scheduler)`. */
  holder: string;
  /** Unique per run: only the run that took a lease may release or renew it. */
  token: string;
}

export interface Lease {
  scope: string;
  holder: string;
  token: string;
  acquiredAt: Date;
  expiresAt: Date;
  /** Bumped by every write; compareAndSet writes only over the version it read. */
  version: number;
  /** Small state kept with the lease (ssm-restart keeps its recent restarts here). */
  data: Record<string, string>;
}

export type Claim = { ok: true } | { ok: false; heldBy: Lease } | { ok: false; error: string };

export interface LeaseStore {
  /** The table's name, for messages. */
  readonly table: string;
  /** The item of a scope, read consistently, or undefined. */
  read(scope: string): Promise<Lease | undefined>;
  /** One conditional write: taken when the scope is free, expired, or already ours. */
  acquire(scope: string, owner: LeaseOwner, now: Date, ttlMs: number): Promise<Claim>;
  /** Releases a lease this owner holds; one taken over by another run (after expiry) is left alone. */
  release(scope: string, owner: LeaseOwner): Promise<void>;
  /**
   * Writes `next` only when the item is still at `expectedVersion` (undefined: when there is none).
   * False when another run wrote first: read again and decide again.
   */
  compareAndSet(next: Omit<Lease, 'version'>, expectedVersion: number | undefined): Promise<boolean>;
  /** Deletes the item of a scope whatever it holds (carry-over lists, not leases). */
  remove(scope: string): Promise<void>;
}

/**
 * The lease table in DynamoDB. The DynamoDB code (shared/lease-dynamo.ts, with the SDK client and its
 * commands) is imported by the first call that reads or writes the table: a run with nothing to claim or
 * record never parses it. `client`: a client, or a function that gives one (shared/aws/dynamodb-on-demand.ts).
 */
export const dynamoLeaseStore = (client: DynamoDBClient | DynamoDbOnDemand, table: string): LeaseStore => {
  const store = onDemand(async () =>
    (await import('./lease-dynamo.ts')).dynamoLeaseStoreOf(
      typeof client === 'function' ? await client() : client,
      table,
    ),
  );
  return {
    table,
    read: async (scope) => (await store()).read(scope),
    // A claim that cannot be made is refused, as one DynamoDB refused: the rows of that scope say why,
    // and the run goes on with the others (also when the client or its code cannot be loaded).
    acquire: async (scope, owner, now, ttlMs) => {
      try {
        return await (await store()).acquire(scope, owner, now, ttlMs);
      } catch (error) {
        return { ok: false, error: errorMessage(error) };
      }
    },
    release: async (scope, owner) => (await store()).release(scope, owner),
    compareAndSet: async (next, expectedVersion) => (await store()).compareAndSet(next, expectedVersion),
    remove: async (scope) => (await store()).remove(scope),
  };
};

/** Why a scope was left alone: who holds it, since when, and when it expires at the latest. */
export const heldReason = (heldBy: Lease, now: Date): string =>
  `another run holds the lease on it: ${heldBy.holder || 'unknown holder'}, for ${formatAge(
    now.getTime() - heldBy.acquiredAt.getTime(),
  )} (since ${stamp(heldBy.acquiredAt)}, expires ${stamp(heldBy.expiresAt)}); nothing changed — run again once it is done`;

/** Why a scope was left alone when the lease table could not be used at all. */
export const leaseErrorReason = (table: string, error: string): string =>
  `could not take a lease in ${table} (${error}); nothing changed: without a lease another run could act on it at the same time`;

const stamp = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * The outcome of the rows of a scope a run could not claim: `undone` when another run holds it (the
 * work is still to do: it is carried over, and the undone alarm fires if it keeps happening), `failed`
 * when the lease table itself could not be used (nothing can run safely until that is fixed).
 */
export const claimOutcome = (claim: Exclude<Claim, { ok: true }>): 'undone' | 'failed' =>
  'heldBy' in claim ? 'undone' : 'failed';

/** The reason a failed claim gives, for the row of the scope it could not take. */
export const claimReason = (claim: Exclude<Claim, { ok: true }>, table: string, now: Date): string =>
  'heldBy' in claim ? heldReason(claim.heldBy, now) : leaseErrorReason(table, claim.error);

/**
 * The leases of one run: taken one scope at a time, released together when the run ends. Without a
 * table (LEASE_TABLE unset) every claim fails with a reason, so a mutating run changes nothing.
 */
/**
 * Every run that holds leases in this process. A Lambda is never interrupted between its statements,
 * but the CLI is (Ctrl-C): it releases these on a signal instead of blocking the scopes until expiry.
 */
export const runsHoldingLeases = new Set<RunLeases>();

export class RunLeases {
  private readonly taken = new Set<string>();
  /** Every scope this run held at some point, released or not. */
  readonly held = new Set<string>();

  constructor(
    private readonly store: LeaseStore | undefined,
    private readonly owner: LeaseOwner,
    private readonly now: () => Date,
    /** How long a lease lasts: the time the run has left, plus a margin (RunContext.remainingMs). */
    private readonly ttlMs: () => number,
  ) {}

  get table(): string {
    return this.store?.table ?? '(no lease table: LEASE_TABLE is not set)';
  }

  get holder(): string {
    return this.owner.holder;
  }

  /** Who this run is, for claims a function keeps past the run (ssm-restart's cooldown). */
  get runOwner(): LeaseOwner {
    return this.owner;
  }

  /**
   * The table itself, for claims that outlive the run (a restart's cooldown is its lease's lifetime)
   * or hold state (compareAndSet); undefined without LEASE_TABLE.
   */
  get leaseStore(): LeaseStore | undefined {
    return this.store;
  }

  /** Takes the lease on `scope` for this run, or says why not. */
  async take(scope: string): Promise<Claim> {
    if (!this.store) return { ok: false, error: 'LEASE_TABLE is not set' };
    const claim = await this.store.acquire(scope, this.owner, this.now(), this.ttlMs());
    if (claim.ok) {
      this.taken.add(scope);
      this.held.add(scope);
      runsHoldingLeases.add(this);
    }
    return claim;
  }

  /** Takes several scopes, a few at a time; the map holds each failed claim's reason. */
  async takeAll(scopes: readonly string[], concurrency = 10): Promise<Map<string, string>> {
    const refused = await this.takeEach(scopes, concurrency);
    return new Map([...refused].map(([scope, r]) => [scope, r.reason]));
  }

  /**
   * Takes several scopes, a few at a time; the map holds, for each scope it could not take, the reason
   * and the outcome its rows get (claimOutcome: `undone` when held by another run, `failed` when the
   * table could not be used).
   */
  async takeEach(
    scopes: readonly string[],
    concurrency = 10,
  ): Promise<Map<string, { reason: string; outcome: 'undone' | 'failed' }>> {
    const refused = new Map<string, { reason: string; outcome: 'undone' | 'failed' }>();
    const queue = [...new Set(scopes)];
    const worker = async () => {
      for (let scope = queue.shift(); scope !== undefined; scope = queue.shift()) {
        const claim = await this.take(scope);
        if (!claim.ok)
          refused.set(scope, {
            reason: claimReason(claim, this.table, this.now()),
            outcome: claimOutcome(claim),
          });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    return refused;
  }

  /** Releases every lease this run took; one that cannot be released simply expires. */
  async releaseAll(): Promise<string[]> {
    const problems: string[] = [];
    const scopes = [...this.taken];
    this.taken.clear();
    runsHoldingLeases.delete(this);
    await Promise.all(
      scopes.map((scope) =>
        this.store
          ?.release(scope, this.owner)
          .catch((error: unknown) => problems.push(`${scope}: ${errorMessage(error)}`)),
      ),
    );
    return problems;
  }
}

/** The lease table of a stage. Public contract: serverless.yml creates it under this name. */
export const leaseTableName = (stage: string, service = 'nightshift'): string => `${service}-${stage}-leases`;
