export * from './events.ts';
export * from './messages.ts';
export * from './reasons.ts';
export * from './timestamp.ts';
export * from './tokens.ts';
export * from './api-token.ts';
export * from './limits.ts';
export type * from './dashboard.ts';
export type * from './api-views.ts';
