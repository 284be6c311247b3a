/**
 * A value made by the first call that needs it (typically after importing its code), then shared by every
 * later call. A failed attempt is not kept: the next call tries again.
 */
export const onDemand = <T>(make: () => Promise<T>): (() => Promise<T>) => {
  let made: Promise<T> | undefined;
  return () =>
    (made ??= make().catch((error: unknown) => {
      made = undefined;
      throw error;
    }));
};
