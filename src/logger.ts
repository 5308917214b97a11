/**
 * Where the library's warnings go. Anything with a `warn(message)` method fits: `console`
 * (the default), a pino/winston logger, or a function collecting messages in a test.
 *
 * @example
 * ```ts
 * const warnings: string[] = []
 * await loadModel(bytes, { logger: { warn: (m) => warnings.push(m) } })
 * ```
 */
export interface Logger {
  warn(message: string): void
}
