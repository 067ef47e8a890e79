import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { LifeboatError, type IncompleteUpload, type ObjectStore, type StoredObject } from "@lifeboat/core";

const PARTIAL = ".partial-";

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

  async put(key: string, body: Readable, opts: { signal?: AbortSignal } = {}): Promise<{ size?: number }> {
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
      await rename(temp, final);
      const dir = await open(dirname(final), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      return { size: (await stat(final)).size };
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
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
