import { S3Client, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { readFileSync } from "node:fs";
const [endpoint, pid] = process.argv.slice(2);
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) / 100; };
const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }, requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" });
const keys = (await client.send(new ListObjectsV2Command({ Bucket: "bench", Prefix: "lb1/" }))).Contents.filter((o) => o.Key.endsWith(".dump")).map((o) => o.Key);
const c0 = cpu(); const t0 = performance.now(); let bytes = 0;
await Promise.all(keys.map(async (Key) => { const r = await client.send(new GetObjectCommand({ Bucket: "bench", Key })); for await (const ch of r.Body) bytes += ch.length; }));
console.log("bytes", bytes, "wall", ((performance.now() - t0) / 1000).toFixed(1), "s3 cpu", (cpu() - c0).toFixed(2));
