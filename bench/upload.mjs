// `pg_dump -Fc | upload` for the bench: stdin to S3 with lib-storage's defaults, as a backup script would do it.
// Plain JavaScript, so that its start-up costs what a script's would.  usage: node bench/upload.mjs <endpoint> <key>
import { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const [endpoint, key] = process.argv.slice(2);
const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
await new Upload({ client, params: { Bucket: "bench", Key: key, Body: process.stdin } }).done();
