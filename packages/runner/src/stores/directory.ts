import { createReadStream, createWriteStream } from "node:fs";
import { link, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { ConditionalWriteFailed, LifeboatError, type IncompleteUpload, type ObjectStore, type PutOptions, type StoredObject } from "@lifeboat/core";

const PARTIAL = ".partial-";

/** A file's ETag as S3 gives a single-part object's: its MD5, in quotes. */
function etagOf(body: Buffer): string {
  return `"${createHash("md5").update(body).digest("hex")}"`;
}
async function fileEtag(path: string): Promise<string> {
  return etagOf(await readFile(path));
}

/**
 * A directory as a store. An object is written under a temporary name in its final directory, flushed to disk,
 * then renamed: readers see the whole file or nothing. A failed write removes the temporary file.
 */
export class DirectoryStore implements ObjectStore {
  readonly root: string;
  readonly url: string;
  constructor(root: string) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  private path(key: string): string {
    const p = resolve(this.root, key);
    if (p !== this.root && !p.startsWith(this.root + sep)) throw new LifeboatError(`key "${key}" escapes the store directory`);
    return p;
  }

  location(key: string): string {
    return pathToFileURL(this.path(key)).href;
  }

  localPath(key: string): string {
    return this.path(key);
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<{ size?: number; etag?: string }> {
    const final = this.path(key);
    await mkdir(dirname(final), { recursive: true });
    const temp = `${final}${PARTIAL}${randomBytes(4).toString("hex")}`;
    try {
      await pipeline(body, createWriteStream(temp, { flags: "wx", mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
      const fh = await open(temp, "r");
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (opts.ifNoneMatch) {
        // link() refuses an existing name, atomically: two writers of one key cannot both succeed
        try {
          await link(temp, final);
          await rm(temp, { force: true });
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "EEXIST") throw new ConditionalWriteFailed(key, "exists");
          // a filesystem without hard links (some network and FUSE mounts): checked, then renamed (not atomic there)
          if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"].includes(code ?? "")) throw err;
          if (await stat(final).then(() => true, () => false)) throw new ConditionalWriteFailed(key, "exists");
          await rename(temp, final);
        }
      } else if (opts.ifMatch) {
        await this.swapIfMatch(key, temp, final, opts.ifMatch);
      } else {
        await rename(temp, final);
      }
      const dir = await open(dirname(final), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      const size = (await stat(final)).size;
      // the ETag of a small record (a lease, a run record: read back for compare-and-swap), never of a dump
      return { size, ...((opts.ifNoneMatch || opts.ifMatch) && size <= 1024 * 1024 ? { etag: await fileEtag(final) } : {}) };
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * If-Match for a file: under a lock file (created exclusively; a lock older than a minute was left by a process that
   * died and is taken over), the current file's ETag is compared and the new one renamed over it.
   */
  private async swapIfMatch(key: string, temp: string, final: string, expected: string): Promise<void> {
    const lock = `${final}${PARTIAL}lock`;
    try {
      await writeFile(lock, String(process.pid), { flag: "wx" });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const age = Date.now() - (await stat(lock).then((s) => s.mtimeMs, () => Date.now()));
      if (age < 60_000) throw new ConditionalWriteFailed(key, "conflict");
      await rm(lock, { force: true });
      return this.swapIfMatch(key, temp, final, expected);
    }
    try {
      const current = await fileEtag(final).catch(() => undefined);
      if (current !== expected) throw new ConditionalWriteFailed(key, "changed");
      await rename(temp, final);
    } finally {
      await rm(lock, { force: true });
    }
  }

  async read(key: string): Promise<{ body: Buffer; etag: string } | undefined> {
    let body: Buffer;
    try {
      body = await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    return { body, etag: etagOf(body) };
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) await rm(this.path(key), { force: true });
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key);
    try {
      await stat(p);
    } catch {
      throw new LifeboatError(`${this.location(key)} does not exist`);
    }
    return createReadStream(p);
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    for await (const f of this.files(prefix)) if (!f.partial) yield { key: f.key, size: f.size };
  }

  /** `.partial-xxxx` files: writes that never completed (a killed run). */
  async *incomplete(prefix: string): AsyncIterable<IncompleteUpload> {
    for await (const f of this.files(prefix)) if (f.partial) yield { key: f.key, id: f.key, startedAt: f.mtime };
  }

  async removeIncomplete(upload: IncompleteUpload): Promise<void> {
    if (!upload.id.includes(PARTIAL)) throw new LifeboatError(`${upload.id} is not a partial file`);
    await rm(this.path(upload.id), { force: true });
  }

  private async *files(prefix: string): AsyncIterable<{ key: string; size: number; mtime: Date; partial: boolean }> {
    // walk only the deepest directory the prefix names, then filter by the full prefix
    const start = this.path(prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "");
    const root = this.root;
    const walk = async function* (dir: string): AsyncIterable<{ key: string; size: number; mtime: Date; partial: boolean }> {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) yield* walk(full);
        else if (e.isFile()) {
          const key = relative(root, full).split(sep).join("/");
          if (!key.startsWith(prefix)) continue;
          const st = await stat(full);
          yield { key, size: st.size, mtime: st.mtime, partial: e.name.includes(PARTIAL) };
        }
      }
    };
    yield* walk(start);
  }
}
