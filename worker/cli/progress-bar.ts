/** A one-line progress bar redrawn in place on a terminal; silent when the stream is not one. */
export class ProgressBar {
  private readonly started = Date.now();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly label: string,
  ) {}

  update(done: number, total: number): void {
    if (!this.stream.isTTY) return;
    const width = 30;
    const filled = total > 0 ? Math.round((Math.min(done, total) / total) * width) : width;
    const rate = done / Math.max(0.001, (Date.now() - this.started) / 1000);
    this.stream.write(`\r\x1b[2K${this.label} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total} ${rate.toFixed(0)}/s`);
  }

  end(): void {
    if (this.stream.isTTY) this.stream.write("\r\x1b[2K");
  }
}
