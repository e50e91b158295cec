/** Prints benchmark rows as a Markdown table: figure, ours, baseline, ratio, target, verdict. */
export interface BenchRow {
  readonly figure: string;
  readonly ours: string;
  readonly baseline: string;
  readonly ratio?: number;
  readonly target: string;
  readonly met?: boolean;
}

export const printTable = (rows: readonly BenchRow[]): void => {
  const lines = [
    '| figure | ours | baseline (same run) | ratio | target | met |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.figure} | ${row.ours} | ${row.baseline} | ${row.ratio === undefined ? '' : `${row.ratio.toFixed(2)}x`} | ${row.target} | ${row.met === undefined ? '' : row.met ? 'yes' : 'NO'} |`,
    ),
  ];
  console.log(lines.join('\n'));
};

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};
