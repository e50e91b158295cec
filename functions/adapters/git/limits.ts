/**
 * The defaults of the git adapter's limits (DESIGN.md section 14), in a module of their own so
 * that the stack can show them without loading the adapter.
 *
 * - 256 MiB of pack per fetch: 25 times the pack of a 60,000-file fleet repository (about
 *   10 MB), and what the worker's 1769 MB holds while an answer is read, unframed and indexed
 *   (about three copies of it at once).
 * - 64 MiB per inflated object or delta: far above any fleet repository's YAML file, and
 *   inflated in well under a second.
 * - Delta chains of 50: git's own `pack.depth`, to which `git pack-objects` cuts the chains it
 *   sends, so a git server does not send longer ones unless configured to.
 * - 90 s per promotion: under the worker function's 120 s timeout, with room for the pull
 *   request.
 */
export const GIT_LIMIT_DEFAULTS = {
  maxPackBytes: 256 * 1024 * 1024,
  maxObjectBytes: 64 * 1024 * 1024,
  maxDeltaDepth: 50,
  promotionTimeoutMs: 90_000,
} as const;
