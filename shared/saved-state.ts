/**
 * State saved on a resource as a tag value, as space-separated `name=value` fields.
 * Tag values may only use letters, digits, spaces and `+ - = . _ : / @` across AWS services
 * (ECS, Auto Scaling and RDS accept the common subset), and are at most 256 characters.
 */
export type SavedFields = Record<string, string | number>;

const FIELD_VALUE = /^[A-Za-z0-9+\-._:/@]+$/;
const FIELD_NAME = /^[a-z][a-z0-9-]*$/;
export const MAX_TAG_VALUE_LENGTH = 256;

export class SavedStateError extends Error {
  override name = 'SavedStateError';
}

export const encodeSavedState = (fields: SavedFields): string => {
  const parts = Object.entries(fields).map(([name, raw]) => {
    const value = String(raw);
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) {
      throw new SavedStateError(`cannot save ${name}=${value}: not tag-safe`);
    }
    return `${name}=${value}`;
  });
  const text = parts.join(' ');
  if (text.length > MAX_TAG_VALUE_LENGTH)
    throw new SavedStateError(`saved state is ${text.length} characters, over 256`);
  return text;
};

export const decodeSavedState = (text: string): Record<string, string> => {
  const fields: Record<string, string> = {};
  for (const part of text.trim().split(/\s+/)) {
    const eq = part.indexOf('=');
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (eq <= 0 || !FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) {
      throw new SavedStateError(`unreadable saved state "${text}" (at "${part}")`);
    }
    fields[name] = value;
  }
  return fields;
};

/** Reads a whole, non-negative number field, or throws naming it. */
export const countField = (fields: Record<string, string>, name: string): number => {
  const value = fields[name];
  if (value === undefined || !/^\d{1,9}$/.test(value)) {
    throw new SavedStateError(`saved state has no valid ${name} (got ${value ?? 'nothing'})`);
  }
  return Number(value);
};
