// IAM database authentication (database.iamAuth): no stored password. A token (an RDS auth token, signed with the
// runner's AWS credentials, valid for 15 minutes for opening connections) goes into a password file that libpq reads
// at each connection (PGPASSFILE; PGPASSWORD is not set), and is replaced every few minutes while the run lasts: every
// connection of a long parallel dump or restore, opened at any time, finds a fresh token.
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Makes a token for one endpoint and user (default: @aws-sdk/rds-signer with the default credentials). */
export type TokenSigner = (endpoint: { hostname: string; port: number; username: string; region: string }) => Promise<string>;

export const rdsSigner: TokenSigner = async (e) => {
  const { Signer } = await import("@aws-sdk/rds-signer");
  return new Signer(e).getAuthToken();
};

/** A token's lifetime is 15 minutes; it is replaced well before. */
export const TOKEN_REFRESH_MS = 5 * 60_000;

/** libpq's .pgpass escaping: ':' and '\\' in a field are backslash-escaped. */
const field = (v: string) => v.replace(/[\\:]/g, (c) => `\\${c}`);

const open = new Set<IamTokenFile>();
/** Every token file still open is removed (and its refresh stopped): when the process ends, or when a caller is done. */
export function closeIamTokenFiles(): void {
  open.forEach((f) => f.close());
}
process.once("exit", closeIamTokenFiles);

export class IamTokenFile {
  readonly path: string;
  private readonly dir: string;
  private timer: NodeJS.Timeout | undefined;
  private constructor(
    private readonly endpoint: { hostname: string; port: number; username: string; region: string },
    private readonly signer: TokenSigner,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "lifeboat-iam-"));
    this.path = join(this.dir, "pgpass");
  }

  /**
   * Writes the first token and keeps the file fresh until close() (or the process ends). One file per endpoint and
   * user: the `schedule` daemon's runs of a target share it, so it holds one file per target, not one per run.
   */
  static async start(endpoint: { hostname: string; port: number; username: string; region: string }, opts: { signer?: TokenSigner; refreshMs?: number } = {}): Promise<IamTokenFile> {
    const signer = opts.signer ?? rdsSigner;
    const same = [...open].find((f) => f.signer === signer && JSON.stringify(f.endpoint) === JSON.stringify(endpoint));
    if (same) return same;
    const f = new IamTokenFile(endpoint, signer);
    open.add(f);
    try {
      await f.refresh();
    } catch (err) {
      f.close();
      throw err;
    }
    f.timer = setInterval(() => void f.refresh().catch(() => undefined), opts.refreshMs ?? TOKEN_REFRESH_MS);
    f.timer.unref();
    return f;
  }

  /** A new token, swapped in whole (a connection never reads a half-written file). */
  async refresh(): Promise<void> {
    const token = await this.signer(this.endpoint);
    const next = `${this.path}.next`;
    writeFileSync(next, `${field(this.endpoint.hostname)}:${this.endpoint.port}:*:${field(this.endpoint.username)}:${field(token)}\n`, { mode: 0o600 });
    chmodSync(next, 0o600);
    renameSync(next, this.path);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    open.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
