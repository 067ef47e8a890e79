import cliProgress from "cli-progress";
import { LifeboatError, errorMessage, formatBytes, formatDuration, type LogLevel, type Logger } from "@lifeboat/core";

/**
 * How the CLI talks: on a terminal, a progress bar and readable lines; otherwise plain log lines; JSON lines on
 * stderr under CI or --json (and, with --json, the result as one JSON document on stdout).
 */
export type OutputMode = "tty" | "plain" | "json";

export function pickMode(opts: { json?: boolean }, env: NodeJS.ProcessEnv = process.env, stderrIsTTY = Boolean(process.stderr.isTTY)): OutputMode {
  if (opts.json || (env.CI && env.CI !== "false" && env.CI !== "0")) return "json";
  return stderrIsTTY ? "tty" : "plain";
}

const PLAIN_PROGRESS_EVERY_MS = 5000;

export class Output implements Logger {
  private bar: cliProgress.SingleBar | undefined;
  private lastPlain = 0;
  /** Without a terminal: the latest progress figures, logged every few seconds and once more when the work ends. */
  private pending: { label: string; fields: Record<string, unknown>; logged: boolean } | undefined;
  constructor(
    public mode: OutputMode,
    readonly jsonResult: boolean,
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
    this.flushPlain();
    if (this.mode === "json") {
      this.err.write(JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields }) + "\n");
      return;
    }
    if (level === "debug") return;
    const extras = Object.entries(fields)
      .filter(([k, v]) => v !== undefined && k !== "target" && k !== "pid")
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    const line = `${level === "info" ? "" : `${level}: `}${message}${extras ? `  ${extras}` : ""}\n`;
    if (this.bar) {
      // a log line ends the progress bar's line
      this.bar.stop();
      this.bar = undefined;
    }
    this.err.write(line);
  }

  progress(label: string, bytes: number, elapsedMs: number, total?: number): void {
    const rate = elapsedMs > 0 ? `${formatBytes(Math.round((bytes / elapsedMs) * 1000))}/s` : "-";
    // with a known total: the time left at the rate so far (nothing before a second of it, when the rate means little)
    const etaMs = total && bytes > 0 && elapsedMs >= 1000 ? Math.max(0, Math.round(((total - bytes) * elapsedMs) / bytes)) : undefined;
    const eta = etaMs === undefined ? "-" : formatDuration(etaMs);
    if (this.mode === "tty") {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          {
            format: total ? `${label} [{bar}] {done} / {all} | {rate} | {time} | ETA {eta}` : `${label} {done} | {rate} | {time}`,
            stream: this.err,
            hideCursor: true,
            clearOnComplete: false,
            barsize: 30,
            fps: 10,
          },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(total ?? 1, 0, { done: "0 B", all: total ? formatBytes(total) : "", rate, time: "0 s", eta });
      }
      this.bar.update(total ? bytes : 0, { done: formatBytes(bytes), rate, time: formatDuration(elapsedMs), eta });
      return;
    }
    this.plainProgress(label, { bytes, human: formatBytes(bytes), rate, ...(total ? { total, ...(etaMs !== undefined ? { eta } : {}) } : {}) }, false);
  }

  /** A progress line every PLAIN_PROGRESS_EVERY_MS (not at the first byte), and the final figures when the work ends. */
  private plainProgress(label: string, fields: Record<string, unknown>, final: boolean): void {
    const now = Date.now();
    if (this.pending && this.pending.label !== label) this.flushPlain();
    if (!this.pending) this.lastPlain = now;
    this.pending = { label, fields, logged: false };
    if (final || now - this.lastPlain >= PLAIN_PROGRESS_EVERY_MS) this.flushPlain();
  }

  private flushPlain(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.logged) return;
    this.lastPlain = Date.now();
    this.log("info", p.label, p.fields);
    this.pending = { ...p, logged: true };
  }

  /** Progress in items (tables restored, ...) rather than bytes. */
  progressItems(label: string, done: number, total: number, unit: string): void {
    if (this.mode === "tty") {
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar(
          { format: `${label} [{bar}] {value}/{total} ${unit}`, stream: this.err, hideCursor: true, barsize: 30, fps: 10 },
          cliProgress.Presets.shades_classic,
        );
        this.bar.start(Math.max(total, done, 1), 0);
      }
      this.bar.update(done);
      return;
    }
    this.plainProgress(label, { done, total, unit }, done === total);
  }

  endProgress(): void {
    if (this.bar) {
      this.bar.stop();
      this.bar = undefined;
    }
    this.flushPlain();
    this.pending = undefined;
  }

  /** The command's result: a human summary, or one JSON document with --json. */
  result(human: string, json: unknown): void {
    this.endProgress();
    if (this.jsonResult) this.out.write(JSON.stringify(json, null, 2) + "\n");
    else this.out.write(human.endsWith("\n") ? human : human + "\n");
  }

  /** Reports an error and returns the exit code to use. */
  fail(err: unknown): number {
    this.endProgress();
    const code = err instanceof LifeboatError ? err.exitCode : 1;
    const hint = err instanceof LifeboatError ? err.hint : undefined;
    const message = errorMessage(err);
    if (this.jsonResult) {
      const extra = err && typeof err === "object" && "attempts" in err ? { attempts: (err as { attempts: unknown }).attempts } : {};
      const problems = err && typeof err === "object" && "problems" in err ? { problems: (err as { problems: unknown }).problems } : {};
      this.out.write(JSON.stringify({ status: "error", exitCode: code, error: message, ...(hint ? { hint } : {}), ...extra, ...problems }, null, 2) + "\n");
    }
    if (this.mode === "json") {
      this.err.write(JSON.stringify({ time: new Date().toISOString(), level: "error", msg: message, exitCode: code, ...(hint ? { hint } : {}) }) + "\n");
    } else {
      this.err.write(`lifeboat: ${message}\n${hint ? `  hint: ${hint}\n` : ""}`);
    }
    return code;
  }
}
