/**
 * "Latest only" runner for hover previews, the loop of transformers.js' segment-anything example: while a decode
 * runs, new requests only replace the one waiting; when the decode ends, the latest waiting request (if any) runs.
 * A burst of pointer moves during one decode therefore costs at most one extra decode.
 */
export class LatestOnly<I, R> {
  private running = false;
  private pending: { input: I } | null = null;
  /** Decodes started (for tests and the runtime panel). */
  runs = 0;

  constructor(
    private readonly run: (input: I) => Promise<R>,
    private readonly onResult: (result: R, input: I) => void,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  request(input: I): void {
    if (this.running) {
      this.pending = { input };
      return;
    }
    void this.start(input);
  }

  /** Drop a waiting request (e.g. the pointer left the image). */
  cancelPending(): void {
    this.pending = null;
  }

  get busy(): boolean {
    return this.running;
  }

  private async start(input: I): Promise<void> {
    this.running = true;
    this.runs++;
    try {
      this.onResult(await this.run(input), input);
    } catch (e) {
      this.onError(e);
    } finally {
      this.running = false;
      const p = this.pending;
      this.pending = null;
      if (p) void this.start(p.input);
    }
  }
}
