/**
 * zod's tree-shakable build, with English messages. The classic `zod` entry pulls every locale into a
 * bundle (444 KiB of an 840 KiB function, measured); zod/mini with one locale is about 20 KiB.
 * Import `* as z from 'zod/mini'` where schemas are written and never re-export the namespace:
 * an exported namespace object defeats tree-shaking.
 */
import { config } from 'zod/mini';
import { en } from 'zod/locales';

config(en());

export type { $ZodType as Schema, output as Infer, $ZodIssue as Issue } from 'zod/v4/core';
