/**
 * Polls wait 2 s, 4 s, 8 s, then 10 s between rounds: restarts usually end in seconds, some take minutes.
 * (Its own module: the handler's default, without execute.ts, which loads on demand.)
 */
export const pollDelayMs = (round: number): number => Math.min(2_000 * 2 ** round, 10_000);
