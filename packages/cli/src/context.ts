import { relative } from "node:path";
import { LocalEventBus, UsageError, parseStoreUrl, type LifeboatConfig, type ObjectStore } from "@lifeboat/core";
import { DefaultSecretResolver, openStore, parseConnectionArg, subscribeNotifications, type ConnectionInfo } from "@lifeboat/runner";
import { findConfigFile, loadConfig } from "@lifeboat/runner";
import { Output, pickMode } from "./output.js";

export interface CommonOptions {
  config?: string;
  json?: boolean;
}

/**
 * A database given on the command line as psql takes it: a postgres:// URL or a libpq keyword=value string; what it
 * leaves out comes from PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE, ... (undefined: only those).
 */
export function connectionArg(text: string | undefined, flag: string, env: NodeJS.ProcessEnv = process.env): ConnectionInfo {
  return parseConnectionArg(text, env, flag);
}

/** Exit codes of a command stopped by a signal (128 + the signal's number, as shells report it). */
export const SIGNAL_EXIT: Record<"SIGINT" | "SIGTERM", number> = { SIGINT: 130, SIGTERM: 143 };
/** After a stop signal, how long a command may take to stop its children and remove its files before it is ended. */
const STOP_GRACE_MS = 30_000;

/** What every command needs: output, and the config when there is one. */
export class Context {
  readonly out: Output;
  private configPromise: Promise<{ file: string; config: LifeboatConfig } | undefined> | undefined;
  private stop: { controller: AbortController; what: string; by?: "SIGINT" | "SIGTERM"; on: (sig: "SIGINT" | "SIGTERM") => void } | undefined;
  constructor(readonly opts: CommonOptions) {
    this.out = new Output(pickMode(opts), Boolean(opts.json));
  }

  /**
   * The config: the file given with --config or $LIFEBOAT_CONFIG, else ./lifeboat.config.ts. An ad hoc command (one
   * pointed at a store or database with --from/--to/--db) uses a config only when it was pointed at one explicitly: a
   * lifeboat.config.ts that happens to lie in the working directory never lends it targets.
   */
  config(adhoc = false): Promise<{ file: string; config: LifeboatConfig } | undefined> {
    if (adhoc && !this.opts.config && !process.env.LIFEBOAT_CONFIG) return Promise.resolve(undefined);
    this.configPromise ??= (async () => {
      const file = findConfigFile(this.opts.config);
      return file ? { file, config: await loadConfig(file) } : undefined;
    })();
    return this.configPromise;
  }

  async requireConfig(why: string): Promise<{ file: string; config: LifeboatConfig }> {
    const c = await this.config();
    if (!c) throw new UsageError(`${why} needs a config, and no lifeboat.config.ts was found in ${process.cwd()}`, "pass --config <file>, or use the ad hoc flags (see --help)");
    return c;
  }

  /** The store named by --from/--to, else the config's. */
  async store(url: string | undefined, flag: string): Promise<ObjectStore> {
    if (url) return openStore(parseStoreUrl(url));
    const c = await this.config();
    if (!c) throw new UsageError(`no store: pass ${flag} s3://bucket/prefix or file:///path, or run where lifeboat.config.ts is`);
    const store = openStore(c.config.storage);
    // say whose store this is: a config found in the working directory is easy to miss
    this.out.log("info", `store ${store.url} (the storage of ${relative(process.cwd(), c.file) || c.file}; ${flag} reads another)`);
    return store;
  }

  /**
   * The command's stop signal: SIGINT (Ctrl-C) or SIGTERM aborts it, and the command stops every child process it
   * started and removes its temporary files on its way out (its finally blocks), then exits 130 / 143 with one line
   * saying what was stopped (main.ts). `what` names the work in that line; a later call renames it. A command that
   * does not stop within 30 s of the signal is ended (its exit hooks still stop throwaway clusters).
   */
  interruptible(what: string): AbortSignal {
    if (!this.stop) {
      const on = (sig: "SIGINT" | "SIGTERM") => {
        if (stop.by) return; // already stopping: the cleanup is under way
        stop.by = sig;
        this.out.log("warn", `${sig}: stopping ${stop.what}`);
        stop.controller.abort(sig);
        setTimeout(() => process.exit(SIGNAL_EXIT[sig]), STOP_GRACE_MS).unref();
      };
      const stop: NonNullable<Context["stop"]> = { controller: new AbortController(), what, on };
      this.stop = stop;
      process.on("SIGINT", on);
      process.on("SIGTERM", on);
    }
    this.stop.what = what;
    return this.stop.controller.signal;
  }

  /** From here a signal is the command's own business (demo --keep waits for Ctrl-C as its normal end). */
  uninterruptible(): void {
    if (!this.stop || this.stop.by) return;
    process.removeListener("SIGINT", this.stop.on);
    process.removeListener("SIGTERM", this.stop.on);
    this.stop = undefined;
  }

  /** The signal that stopped the command, and what it stopped, if one did. */
  get interrupted(): { by: "SIGINT" | "SIGTERM"; what: string } | undefined {
    return this.stop?.by ? { by: this.stop.by, what: this.stop.what } : undefined;
  }

  /** The event bus with the config's notifications; `signal` ends their requests and waits (SIGTERM). */
  async bus(config: LifeboatConfig | undefined, signal?: AbortSignal): Promise<LocalEventBus> {
    const bus = new LocalEventBus((err) => this.out.log("warn", "notification failed", { error: (err as Error).message }));
    if (config) await subscribeNotifications(bus, config, new DefaultSecretResolver(), { log: this.out, ...(signal ? { signal } : {}) });
    return bus;
  }
}
