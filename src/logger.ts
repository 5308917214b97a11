/**
 * The `logger` option: any object with some of `debug/info/warn/error(message, data?)`,
 * so `console` works as is. The engine logs KV-cache reuse, context shifts and (server)
 * requests through it; nothing is logged without one.
 *
 * @example
 * ```ts
 * const model = await loadModel('model.gguf', { logger: console })
 * ```
 */
export interface Logger {
  debug?(message: string, data?: Record<string, unknown>): void
  info?(message: string, data?: Record<string, unknown>): void
  warn?(message: string, data?: Record<string, unknown>): void
  error?(message: string, data?: Record<string, unknown>): void
}
