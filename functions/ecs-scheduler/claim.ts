import { groupLeaseScope } from '#shared/group-tags.ts';
import type { RunLeases } from '#shared/lease.ts';
import type { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import {
  readClusters,
  readEstate,
  readGroupRefs,
  withServices,
  type ClusterInfo,
  type Estate,
  type Reader,
  type Refusal,
} from './inventory.ts';
import { clustersInPlay } from './plan.ts';

/**
 * What a mutating run plans from: the state of the clusters and groups it holds leases on, read after
 * taking them. First it finds out which clusters are in play (the named ones; with `tags`, those with
 * a selected service) and which capacity groups they run on, without planning from any of it; then it
 * takes a lease on each cluster (scope: its ARN) and each group (`groupLeaseScope`, the scope
 * instance-rotation takes too); then it reads everything again, under those leases. A stop or start
 * (or a rotation step) that holds one of them keeps its scope, and this run reports it `undone` with
 * the holder and its age (its work is still to do: the next run starts with it). Without a usable lease
 * table every claim fails, nothing changes, and the rows are `failed` (claimOutcome).
 *
 * Clusters that only share a group (a stop reads their services to decide whether the group may be
 * parked) are not leased: any run that could start their services on the group holds the group's lease.
 */
export const readClaimedEstate = async (
  reader: Reader,
  input: SchedulerInput,
  leases: RunLeases,
): Promise<Estate> => {
  const described = await readClusters(reader, input.clusters);
  let inPlay: ClusterInfo[] = described.found;
  if (input.tags) {
    const selected = clustersInPlay(input, await withServices(reader, described.found));
    inPlay = described.found.filter((c) => selected.has(c.arn));
  }
  const groups = inPlay.length > 0 ? await readGroupRefs(reader, inPlay) : [];

  const refused = await leases.takeEach([
    ...inPlay.map((c) => c.arn),
    ...groups.map((g) => groupLeaseScope(g.arn)),
  ]);
  const leased = inPlay.filter((c) => !refused.has(c.arn));
  const groupRefused = new Map<string, Refusal>();
  for (const g of groups) {
    const refusal = refused.get(groupLeaseScope(g.arn));
    if (refusal) groupRefused.set(g.arn, refusal);
  }

  const estate = await readEstate(
    reader,
    { clusters: leased.map((c) => c.arn) },
    {
      withSharers: input.action === 'stop',
      leasedGroups: new Set(groups.filter((g) => !groupRefused.has(g.arn)).map((g) => g.arn)),
      refused: groupRefused,
    },
  );
  return {
    ...estate,
    missingClusters: [...described.missing, ...estate.missingClusters],
    heldClusters: inPlay.flatMap((c) => {
      const refusal = refused.get(c.arn);
      return refusal ? [{ arn: c.arn, name: c.name, ...refusal }] : [];
    }),
  };
};
