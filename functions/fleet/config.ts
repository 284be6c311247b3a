import '#shared/zod.ts';
import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { StateConfig } from '#shared/handler.ts';
import { SummaryConfig } from '#shared/summary.ts';

/**
 * The hub's fleet: the stage params fleetAccounts, fleetRegions and fleetOrganizationUnits (comma
 * strings, parsed by shared/fleet/targets.ts when a run needs them, so a run with its own accounts and
 * regions is not refused for a stage list it does not use), the lease table its rows live in, the ops topic.
 */
export const FleetConfig = z.object({
  FLEET_ACCOUNTS: z.optional(z.string()),
  FLEET_REGIONS: z.optional(z.string()),
  FLEET_ORGANIZATION_UNITS: z.optional(z.string()),
  ...StateConfig.shape,
  ...SummaryConfig.shape,
});
export type FleetConfig = Infer<typeof FleetConfig>;
