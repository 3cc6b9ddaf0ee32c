// The live heap of an app process as its own garbage collector finds it: through the process's
// inspector (it is started with --inspect on loopback), a performance observer in the process notes
// V8's used heap after every full (mark-compact) collection, and the bench collects the notes.
// Unlike RSS, which follows V8's choice of how far to let the heap grow between collections, this
// is what the process still holds; and unlike a forced collection, it does not change how the
// process sizes its heap.

interface EvaluateReply {
  readonly id?: number;
  readonly result?: {
    readonly result?: { readonly value?: unknown };
    readonly exceptionDetails?: { readonly text: string };
  };
  readonly error?: { readonly message: string };
}

// Runs in the app process. The observer's callback comes just after the collection; what was
// allocated in between is counted too, so the smallest of several notes is the closest.
const INSTALL = `(() => {
  const { PerformanceObserver, constants } = process.getBuiltinModule('node:perf_hooks');
  const v8 = process.getBuiltinModule('node:v8');
  const notes = (globalThis.__benchLiveHeap = []);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        notes.push(v8.getHeapStatistics().used_heap_size);
      }
    }
  }).observe({ entryTypes: ['gc'] });
  return true;
})()`;
const TAKE = `globalThis.__benchLiveHeap.splice(0)`;

export class LiveHeapWatch {
  private readonly socket: WebSocket;
  private nextId = 1;

  private constructor(socket: WebSocket) {
    this.socket = socket;
  }

  /** Connects to the process's inspector and starts noting its full collections. */
  static async attach(inspectorUrl: string): Promise<LiveHeapWatch> {
    const socket = new WebSocket(inspectorUrl);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error('inspector: cannot connect')), {
        once: true,
      });
    });
    const watch = new LiveHeapWatch(socket);
    await watch.evaluate(INSTALL);
    return watch;
  }

  /** The used heap (bytes) after each full collection since the last call. */
  async take(): Promise<number[]> {
    const notes = await this.evaluate(TAKE);
    if (!Array.isArray(notes) || !notes.every((note) => typeof note === 'number')) {
      throw new Error('inspector: unexpected live-heap notes');
    }
    return notes;
  }

  close(): void {
    this.socket.close();
  }

  private evaluate(expression: string): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (event: MessageEvent) => {
        const reply = JSON.parse(String(event.data)) as EvaluateReply;
        if (reply.id !== id) return;
        this.socket.removeEventListener('message', onMessage);
        const failure = reply.error?.message ?? reply.result?.exceptionDetails?.text;
        if (failure !== undefined) reject(new Error(`inspector: ${failure}`));
        else resolve(reply.result?.result?.value);
      };
      this.socket.addEventListener('message', onMessage);
      this.socket.send(
        JSON.stringify({
          id,
          method: 'Runtime.evaluate',
          params: { expression, returnByValue: true },
        }),
      );
    });
  }
}
