import { LocalEventBus, UsageError, parseStoreUrl, type LifeboatConfig, type ObjectStore } from "@lifeboat/core";
import { DefaultSecretResolver, openStore, parsePostgresUrl, subscribeNotifications, type ConnectionInfo } from "@lifeboat/runner";
import { findConfigFile, loadConfig } from "@lifeboat/runner";
import { Output, pickMode } from "./output.js";

export interface CommonOptions {
  config?: string;
  json?: boolean;
}

/** A postgres:// URL given on the command line; without a password in it, PGPASSWORD applies (as for psql). */
export function postgresUrlArg(url: string, env: NodeJS.ProcessEnv = process.env): ConnectionInfo {
  const c = parsePostgresUrl(url);
  if (c.password === undefined && env.PGPASSWORD) c.password = env.PGPASSWORD;
  return c;
}

/** What every command needs: output, and the config when there is one. */
export class Context {
  readonly out: Output;
  private configPromise: Promise<{ file: string; config: LifeboatConfig } | undefined> | undefined;
  constructor(readonly opts: CommonOptions) {
    this.out = new Output(pickMode(opts), Boolean(opts.json));
  }

  config(): Promise<{ file: string; config: LifeboatConfig } | undefined> {
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
    return openStore(c.config.storage);
  }

  /** The event bus with the config's notifications; `signal` ends their requests and waits (SIGTERM). */
  async bus(config: LifeboatConfig | undefined, signal?: AbortSignal): Promise<LocalEventBus> {
    const bus = new LocalEventBus((err) => this.out.log("warn", "notification failed", { error: (err as Error).message }));
    if (config) await subscribeNotifications(bus, config, new DefaultSecretResolver(), { log: this.out, ...(signal ? { signal } : {}) });
    return bus;
  }
}
