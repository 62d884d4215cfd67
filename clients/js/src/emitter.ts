/** Rethrows on a later task: the error shows in the console as uncaught, the client goes on. */
function rethrowLater(error: unknown): void {
  setTimeout(() => {
    throw error;
  }, 0);
}

/** A small typed event emitter: one handler throwing does not stop the others or the client. */
export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<(event: never) => void>>();

  /** `report` receives exceptions thrown by handlers (default: rethrown on a later task). */
  constructor(private readonly report: (error: unknown) => void = rethrowLater) {}

  /** Calls `handler` for every event of `type`; returns a function that unsubscribes it. */
  on<K extends keyof Events>(type: K, handler: (event: Events[K]) => void): () => void {
    let set = this.handlers.get(type);
    if (set === undefined) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as (event: never) => void);
    return () => this.off(type, handler);
  }

  /** Removes a handler added with `on`. */
  off<K extends keyof Events>(type: K, handler: (event: Events[K]) => void): void {
    this.handlers.get(type)?.delete(handler as (event: never) => void);
  }

  /** Whether anyone listens to `type`. */
  listens(type: keyof Events): boolean {
    return (this.handlers.get(type)?.size ?? 0) > 0;
  }

  /** Delivers an event to every handler; a handler's exception goes to `report`. */
  emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.handlers.get(type);
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        (handler as (event: Events[K]) => void)(event);
      } catch (error) {
        this.report(error);
      }
    }
  }

  /** Drops every handler. */
  clear(): void {
    this.handlers.clear();
  }
}
