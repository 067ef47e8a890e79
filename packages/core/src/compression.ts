import { z } from "zod";

/**
 * How pg_dump compresses. `dump.compression` and `lifeboat run --compression` take
 *   none | gzip[:1-9] | zstd[:1-22] | lz4[:1-12]      or an integer 0-9 (a gzip level; 0 is none)
 * and nothing (the default) picks by the pg_dump that runs: zstd:3 where pg_dump has it (16 and later), else gzip:1.
 *
 * Measured on a 1.65 GB realistic database with pg_dump 15 (`npm run bench`, README): gzip level 6, pg_dump's own
 * default, is single-threaded and 2.5x slower than level 1 for 5 % less output; so gzip:1. pg_dump 16 added zstd and
 * lz4 (`--compress=method[:detail]`, https://www.postgresql.org/docs/16/app-pgdump.html); zstd's default level 3
 * compresses better than gzip 6 at several times gzip 1's speed (https://facebook.github.io/zstd/), so it is the
 * default wherever pg_dump offers it (the runner image's pg_dump 18).
 */
export type CompressionMethod = "none" | "gzip" | "zstd" | "lz4";
export interface Compression {
  method: CompressionMethod;
  level?: number | undefined;
}

export const COMPRESSION_LEVELS: Record<Exclude<CompressionMethod, "none">, [number, number]> = { gzip: [1, 9], zstd: [1, 22], lz4: [1, 12] };
/** The first pg_dump that has each method. */
export const COMPRESSION_SINCE: Record<CompressionMethod, number> = { none: 0, gzip: 0, zstd: 16, lz4: 16 };
const EXPECTED = "none, gzip[:1-9], zstd[:1-22], lz4[:1-12], or a gzip level 0-9";

/** Parses a compression setting; throws an Error whose message names what is wrong and what is accepted. */
export function parseCompression(v: string | number): Compression {
  if (typeof v === "number" || /^\d+$/.test(v)) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 9) throw new Error(`compression ${v} is not a gzip level 0-9 (expected ${EXPECTED})`);
    return n === 0 ? { method: "none" } : { method: "gzip", level: n };
  }
  const m = /^(none|gzip|zstd|lz4)(?::(\d+))?$/.exec(v.trim().toLowerCase());
  if (!m) throw new Error(`compression "${v}" is not one of ${EXPECTED}`);
  const method = m[1] as CompressionMethod;
  if (method === "none") {
    if (m[2] !== undefined) throw new Error(`compression "${v}": none takes no level`);
    return { method };
  }
  if (m[2] === undefined) return { method };
  const level = Number(m[2]);
  const [lo, hi] = COMPRESSION_LEVELS[method];
  if (level < lo || level > hi) throw new Error(`compression "${v}": ${method} levels are ${lo}-${hi}`);
  return { method, level };
}

export const compressionSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseCompression(v);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

/** What runs when the config names no compression: zstd:3 on pg_dump 16 and later, gzip:1 before. */
export function defaultCompression(pgDumpMajor: number): Compression {
  return pgDumpMajor >= COMPRESSION_SINCE.zstd ? { method: "zstd", level: 3 } : { method: "gzip", level: 1 };
}

/** The setting as text: "gzip:1", "zstd", "none". */
export function compressionText(c: Compression): string {
  return c.level === undefined ? c.method : `${c.method}:${c.level}`;
}

/** A manifest's compression (a gzip level in manifests before compression methods existed, else the text). */
export function manifestCompression(v: number | string): Compression {
  return parseCompression(v);
}

/**
 * pg_dump's --compress argument. pg_dump 15 and older take a gzip level only; 16 and later take method[:level].
 * A method this pg_dump lacks is an error naming the version found.
 */
export function pgDumpCompressArg(c: Compression, pgDump: { major: number; version: string }): string {
  if (pgDump.major < COMPRESSION_SINCE[c.method]) {
    throw new Error(
      `compression ${compressionText(c)} needs pg_dump ${COMPRESSION_SINCE[c.method]} or later, and the pg_dump found is ${pgDump.version}: use gzip[:1-9] or none, or install a newer PostgreSQL client`,
    );
  }
  if (pgDump.major < 16) return `--compress=${c.method === "none" ? 0 : (c.level ?? 6)}`;
  return `--compress=${compressionText(c)}`;
}
