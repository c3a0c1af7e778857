/**
 * Whether the gateway still takes traffic: true until shutdown begins, then /readyz answers 503. Only
 * the gateway's close() stops it; everything else reads it.
 */
export interface ReadinessView { readonly accepting: boolean }

export class Readiness implements ReadinessView {
  #accepting = true
  get accepting (): boolean { return this.#accepting }
  /** Shutdown has begun: no longer ready. */
  stop (): void { this.#accepting = false }
}
