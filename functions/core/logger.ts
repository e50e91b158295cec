/**
 * The structured logger the core writes to. Powertools' Logger satisfies it as it is; `serve`
 * and tests pass the same or a silent one.
 */
export interface LogPort {
  debug(message: string, ...attributes: Record<string, unknown>[]): void;
  info(message: string, ...attributes: Record<string, unknown>[]): void;
  warn(message: string, ...attributes: Record<string, unknown>[]): void;
  error(message: string, ...attributes: Record<string, unknown>[]): void;
}

export const silentLogger: LogPort = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
