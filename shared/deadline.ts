/**
 * Reads respect the Lambda deadline as writes do: a read that is still paging when the run must stop
 * throws OutOfTimeError instead of being killed by the timeout without a report. A function may catch
 * it and report what it could not read; withOps turns one that reaches it into an `undone` row.
 */
export class OutOfTimeError extends Error {
  override name = 'OutOfTimeError';
  constructor(
    /** What was being read, for the report: `ECS services of cluster stage`. */
    public readonly what: string,
  ) {
    super(`the Lambda was about to time out while reading ${what}`);
  }
}

/** Throws OutOfTimeError naming `what` when the run has no time left. */
export const assertTime = (hasTime: () => boolean, what: string): void => {
  if (!hasTime()) throw new OutOfTimeError(what);
};

// The names AWS APIs give the token of the next page (ECS, Auto Scaling, EC2: NextToken/nextToken;
// RDS: Marker).
const TOKENS = ['NextToken', 'nextToken', 'Marker', 'NextMarker'] as const;

/** True when a page says another one follows. */
export const hasNextPage = (page: unknown): boolean =>
  TOKENS.some((key) => {
    const token = (page as Record<string, unknown> | null)?.[key];
    return typeof token === 'string' && token !== '';
  });

/**
 * Every page of a paginator, checking the deadline before each further request, so a read of
 * thousands of pages stops in time. The first page is always read (a run that starts with no time
 * left stops at its first write instead), and the check is made only when another page follows.
 */
export async function* pagesWithin<P>(
  pages: AsyncIterable<P>,
  hasTime: () => boolean,
  what: string,
): AsyncGenerator<P> {
  for await (const page of pages) {
    yield page;
    if (hasNextPage(page)) assertTime(hasTime, what);
  }
}
