/** Small statistics for benchmark figures: percentiles over samples, medians over trials. */

/** The p-th percentile (0..100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** A figure repeated over trials: the median and the spread. */
export interface Figure {
  median: number;
  min: number;
  max: number;
  trials: number[];
}

export function figure(trials: readonly number[]): Figure {
  return {
    median: median(trials),
    min: Math.min(...trials),
    max: Math.max(...trials),
    trials: [...trials],
  };
}

export function formatFigure(value: Figure, unit: string, digits = 1): string {
  const round = (n: number) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
  if (value.trials.length <= 1) return `${round(value.median)} ${unit}`;
  return `${round(value.median)} ${unit} (${round(value.min)}–${round(value.max)})`;
}

/** Renders rows as a Markdown table (also readable in a terminal). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}
