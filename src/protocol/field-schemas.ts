/**
 * Leaf schemas with the messages Lanes answers when a value breaks them; the
 * shapes of the protocol and the API are built from these, so one kind of
 * field is refused with one sentence everywhere.
 */
import Type from 'typebox';
import type { TSchemaOptions } from 'typebox';
import type { ShapeMessage } from './wire-shape.ts';

const withMessage = (message: ShapeMessage, options: TSchemaOptions = {}): TSchemaOptions => ({ ...options, message });

/** A string of at least one character. */
export const nonEmptyString = (message: ShapeMessage = 'must be a non-empty string') => Type.String(withMessage(message, { minLength: 1 }));

/** Any string. */
export const anyString = (message: ShapeMessage = 'must be a string') => Type.String(withMessage(message));

/** A string, or null (both mean "given"; a missing field is `Type.Optional` around it). */
export const nullableString = (message: ShapeMessage = 'must be a string or null') => Type.Union([Type.String(), Type.Null()], withMessage(message));

/** A whole number from `min` to `max`. */
export const integerFrom = (min: number, max: number, message: ShapeMessage = `must be an integer from ${min} to ${max}`) =>
  Type.Integer(withMessage(message, { minimum: min, maximum: max }));

/** A number above zero (not necessarily whole). */
export const positiveNumber = (message: ShapeMessage = 'must be a positive number') => Type.Number(withMessage(message, { exclusiveMinimum: 0 }));

/** A number of zero or more. */
export const nonNegativeNumber = (message: ShapeMessage = 'must be a non-negative number') => Type.Number(withMessage(message, { minimum: 0 }));

/** true or false. */
export const boolean = (message: ShapeMessage = 'must be a boolean') => Type.Boolean(withMessage(message));

/** Any JSON object (not a list, not null). */
export const anyObject = (message: ShapeMessage = 'must be an object') => Type.Object({}, withMessage(message));

/** Any JSON value, including none at all. */
export const anyValue = () => Type.Unknown();
