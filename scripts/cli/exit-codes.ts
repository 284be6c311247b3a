/**
 * The CLI's exit codes (a public contract: scripts and pipelines branch on them). Apart from output.ts,
 * which renders reports (cli-table3), so the program definition and `nightshift --help` load neither.
 */
export const EXIT = {
  ok: 0,
  /** Something failed: a failed row, the function threw, the lease table could not be used. */
  failed: 1,
  /**
   * Refused: bad input, no --yes without a terminal, a kill switch, a local run that cannot be as
   * guarded as its stage, a change asked of a function whose DRY_RUN=true makes it only plan.
   */
  usage: 2,
  /**
   * Not finished, nothing lost: work left undone, scopes held by another run, a plan that changed, a
   * restart in which nothing restarted, commands still running when the function had to stop.
   */
  notFinished: 3,
  /** Interrupted by Ctrl-C (128 + SIGINT) or SIGTERM (128 + SIGTERM), as shells report it. */
  interrupted: 130,
  terminated: 143,
} as const;
