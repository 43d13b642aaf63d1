/** The workflows the benchmarks submit: Lightning-shaped plans with the real language-common adaptor. */

export const ADAPTOR = '@openfn/language-common@3.3.4';

function singleJob(body: string): Record<string, unknown> {
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job', name: 'job', adaptor: ADAPTOR, body }],
    edges: [{ id: 'edge', source_trigger_id: 'trigger', target_job_id: 'job', condition: 'always' }],
  };
}

/**
 * A run that does nothing but stamp the moment its first line of job code
 * runs (`Date.now()`, the machine's clock, as the bench's submit time is)
 * into its state: its cost is the platform's, and `firstLineLatencyMs` reads
 * where the user's code began.
 */
export const trivialPlan = (): Record<string, unknown> => singleJob('fn(state => ({ ...state, data: { firstLineAt: Date.now() } }));');

/** A run that holds its slot for `seconds` without using CPU. */
export const slowPlan = (seconds: number): Record<string, unknown> =>
  singleJob(`fn(async state => { await new Promise(resolve => setTimeout(resolve, ${Math.round(seconds * 1000)})); return state; });`);
