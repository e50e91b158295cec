/**
 * Rows under their headers, each column as wide as its widest cell, two spaces apart; the last
 * column is not padded (no trailing spaces).
 *
 * @example
 * textTable(['ENV', 'STATE'], [['dev', '-'], ['staging', 'opened']]);
 * // ['ENV      STATE', 'dev      -', 'staging  opened']
 */
export const textTable = (
  headers: readonly string[],
  rows: readonly (readonly string[])[],
): string[] => {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0),
      )
      .join('  ');
  return [line(headers), ...rows.map(line)];
};
