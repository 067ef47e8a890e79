import { mkdtempSync, rmSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import S3rver from "s3rver";

/**
 * An S3-compatible server on loopback (the s3rver package), for the demo and the tests. It speaks the real S3 API
 * over HTTP, path-style, with signature checks (credentials S3RVER / S3RVER).
 *
 * s3rver does not implement AbortMultipartUpload or ListMultipartUploads (it answers 405 / 501), so an aborted
 * upload's parts would stay on its disk forever. This twin adds both calls on top of s3rver's own storage layout
 * (<dir>/<bucket>/._S3rver_uploads/<uploadId>/{key,1,2,...}), so that Lifeboat's abort path is exercised for real.
 */
export interface EmbeddedS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  directory: string;
  /** Multipart uploads still pending on disk (what ListMultipartUploads reports). */
  pendingUploads(bucket?: string): Promise<Array<{ key: string; uploadId: string }>>;
  stop(): Promise<void>;
}

const UPLOADS = "._S3rver_uploads";

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

async function pending(directory: string, bucket: string): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
  const root = join(directory, bucket, UPLOADS);
  let ids: string[];
  try {
    ids = await readdir(root);
  } catch {
    return [];
  }
  const out = [];
  for (const uploadId of ids) {
    try {
      const key = await readFile(join(root, uploadId, "key"), "utf8");
      out.push({ key, uploadId, initiated: (await stat(join(root, uploadId))).mtime });
    } catch {
      /* being written or removed */
    }
  }
  return out;
}

export async function startEmbeddedS3(opts: { bucket?: string; port?: number } = {}): Promise<EmbeddedS3> {
  const bucket = opts.bucket ?? "lifeboat";
  const directory = mkdtempSync(join(tmpdir(), "lifeboat-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port ?? 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });

  // Runs before s3rver's router (Koa composes middleware when the server starts listening).
  const multipartCalls = async (ctx: { method: string; url: string; status: number; body: unknown; type: string }, next: () => Promise<void>) => {
    const url = new URL(ctx.url, "http://localhost");
    const [b, ...rest] = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (!b) return next();
    if (ctx.method === "DELETE" && rest.length > 0 && url.searchParams.has("uploadId")) {
      const uploadId = url.searchParams.get("uploadId") ?? "";
      const dir = join(directory, b, UPLOADS, uploadId);
      if (!/^[A-Za-z0-9._-]+$/.test(uploadId) || !(await stat(dir).catch(() => null))) {
        ctx.status = 404;
        ctx.type = "application/xml";
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`;
        return;
      }
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    if (ctx.method === "GET" && rest.length === 0 && url.searchParams.has("uploads")) {
      const prefix = url.searchParams.get("prefix") ?? "";
      const uploads = (await pending(directory, b)).filter((u) => u.key.startsWith(prefix));
      ctx.status = 200;
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Bucket>${xmlEscape(b)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix>` +
        `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        uploads
          .map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${xmlEscape(u.uploadId)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`)
          .join("") +
        `</ListMultipartUploadsResult>`;
      return;
    }
    return next();
  };
  (server as unknown as { middleware: unknown[] }).middleware.splice(1, 0, multipartCalls);

  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    bucket,
    directory,
    pendingUploads: async (name = bucket) => (await pending(directory, name)).map(({ key, uploadId }) => ({ key, uploadId })),
    async stop() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
