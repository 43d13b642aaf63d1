/**
 * Turns the engine's events for one run into protocol payloads
 * (PROTOCOL.md, `run:<id>`). It keeps the dataclip chain: the first step's
 * input is the run's `dataclip_id`, a later step's input is the output of the
 * step it came from, and an output that was not sent (too large, or
 * `output_dataclips: false`) leaves the next step without `input_dataclip_id`.
 * Pure apart from making UUIDs; no I/O.
 */
import { randomUUID } from 'node:crypto';
import type { EngineLog, EngineRunComplete, EngineRunStart, EngineStepComplete, EngineStepStart } from '../engine/types.ts';
import { DATACLIP_TOO_LARGE } from '../protocol/events.ts';
import type { LogLine, RunCompletePayload, RunPlan, RunStartPayload, StepCompletePayload, StepStartPayload } from '../protocol/messages.ts';

export interface RunEventMapperOptions {
  runId: string;
  plan: RunPlan;
  /** Worker-made `log_id` keys, only under `idempotent_events`. */
  keyLogs: boolean;
  /** Largest `final_state` sent, in bytes; a larger one is left out (its step already reported the size). */
  payloadLimitBytes: number;
  makeId?: () => string;
}

export class RunEventMapper {
  readonly #runId: string;
  readonly #plan: RunPlan;
  readonly #keyLogs: boolean;
  readonly #payloadLimitBytes: number;
  readonly #makeId: () => string;
  readonly #sendOutputs: boolean;
  /** Output dataclip id of the latest completed step of each job; null when its output was not sent. */
  readonly #outputByJob = new Map<string, string | null>();
  readonly #outputByStep = new Map<string, string | null>();
  /** Steps whose output was over the payload limit: their state is not stringified again for final_state. */
  readonly #tooLarge = new Set<string>();
  #lastOutput: string | null | undefined = undefined;

  constructor(options: RunEventMapperOptions) {
    this.#runId = options.runId;
    this.#plan = options.plan;
    this.#keyLogs = options.keyLogs;
    this.#payloadLimitBytes = options.payloadLimitBytes;
    this.#makeId = options.makeId ?? randomUUID;
    this.#sendOutputs = options.plan.options?.output_dataclips !== false;
  }

  runStart(event: EngineRunStart): RunStartPayload {
    return { timestamp: event.timestamp, versions: event.versions };
  }

  stepStart(event: EngineStepStart): StepStartPayload {
    const payload: StepStartPayload = { step_id: event.stepId, job_id: event.jobId, timestamp: event.timestamp };
    const input = this.#inputFor(event.jobId);
    if (input !== null) payload.input_dataclip_id = input;
    return payload;
  }

  log(event: EngineLog): LogLine {
    const line: LogLine = {
      run_id: this.#runId,
      message: event.message,
      level: event.level,
      source: event.source,
      timestamp: event.timestamp,
    };
    if (event.stepId !== undefined) line.step_id = event.stepId;
    if (this.#keyLogs) line.log_id = this.#makeId();
    return line;
  }

  /** A key for a `run:batch_logs` push under `idempotent_events`. */
  batchKey(): string | undefined {
    return this.#keyLogs ? this.#makeId() : undefined;
  }

  stepComplete(event: EngineStepComplete): StepCompletePayload {
    const payload: StepCompletePayload = {
      step_id: event.stepId,
      job_id: event.jobId,
      reason: event.reason,
      error_type: event.errorType,
      error_message: event.errorMessage,
      mem: event.mem,
      duration: event.durationMs,
      timestamp: event.timestamp,
    };
    let outputId: string | null = null;
    if (event.outputTooLarge) {
      this.#tooLarge.add(event.stepId);
      payload.output_dataclip_error = DATACLIP_TOO_LARGE;
    } else if (this.#sendOutputs && event.outputJson !== null) {
      outputId = this.#makeId();
      payload.output_dataclip = event.outputJson;
      payload.output_dataclip_id = outputId;
    }
    if (event.threadId !== undefined) payload.thread_id = event.threadId;
    if (event.webhookResponse !== undefined) payload.webhook_response = event.webhookResponse;
    this.#outputByJob.set(event.jobId, outputId);
    this.#outputByStep.set(event.stepId, outputId);
    this.#lastOutput = outputId;
    return payload;
  }

  runComplete(event: EngineRunComplete): RunCompletePayload {
    const payload: RunCompletePayload = {
      reason: event.reason,
      error_type: event.errorType,
      error_message: event.errorMessage,
      timestamp: event.timestamp,
    };
    if (event.finalStepId !== undefined) {
      const finalId = this.#outputByStep.get(event.finalStepId);
      if (typeof finalId === 'string') payload.final_dataclip_id = finalId;
    }
    const finalTooLarge = event.finalStepId !== undefined && this.#tooLarge.has(event.finalStepId);
    if (event.finalState !== undefined && !finalTooLarge && fitsLimit(event.finalState, this.#payloadLimitBytes)) {
      payload.final_state = event.finalState;
    }
    return payload;
  }

  /** The input dataclip of a step of `jobId`, or null when it must be left out. */
  #inputFor(jobId: string): string | null {
    const incoming = this.#plan.edges.filter((edge) => edge.target_job_id === jobId);
    for (const edge of incoming) {
      if (typeof edge.source_job_id === 'string' && this.#outputByJob.has(edge.source_job_id)) {
        return this.#outputByJob.get(edge.source_job_id) ?? null;
      }
    }
    // The first step reads the run's input; a plan without a dataclip has none to name.
    if (this.#lastOutput === undefined) return this.#plan.dataclip_id === '' ? null : this.#plan.dataclip_id;
    // No upstream step ran (a second trigger, or an unusual plan): the previous step's output is the best guess.
    return this.#lastOutput;
  }
}

function fitsLimit(value: unknown, limitBytes: number): boolean {
  try {
    const text = JSON.stringify(value);
    return text === undefined || Buffer.byteLength(text) <= limitBytes;
  } catch {
    return false;
  }
}
