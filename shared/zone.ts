/**
 * One cached Intl formatter per IANA time zone, reading an instant as that zone's wall clock
 * (24-hour, numeric parts). Shared by the cron windows and the schedules evaluator.
 */
const formatters = new Map<string, Intl.DateTimeFormat>();

export const zoneFormatter = (timeZone: string): Intl.DateTimeFormat => {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
};
