import { LanesError } from '../errors/lanes-error.ts';

/**
 * A `--workloops` string that breaks the grammar. `token` is the offending
 * piece (a lane, a queue name or a capacity) and `rule` says which rule it
 * breaks, so the message can point at it.
 */
export class WorkloopsError extends LanesError {
  readonly token: string;
  readonly rule: string;

  constructor(token: string, rule: string) {
    super('INVALID_WORKLOOPS', `${JSON.stringify(token)}: ${rule}`);
    this.token = token;
    this.rule = rule;
  }
}
