/**
 * S3 multipart arithmetic. A multipart upload has at most 10,000 parts of at most 5 GiB, and an object at most
 * 5 TiB (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). With a fixed 8 MiB part a dump stops
 * fitting at about 78 GiB, after hours of work; so the part size is chosen before the dump starts, from a bound on
 * the dump's size that the database's size gives, and an ordinary database keeps small parts (and little memory).
 */
export const MiB = 1024 * 1024;
export const S3_MAX_PARTS = 10_000;
export const S3_MAX_PART_SIZE = 5 * 1024 * MiB;
export const S3_MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;
/**
 * The part size of an ordinary database, and the memory budget of the parts in flight (2 x 8 MiB): two concurrent
 * part uploads keep up with pg_dump's output (bench), and each part in flight holds its buffer until S3 has it (one
 * more part fills meanwhile), so more would only raise the peak RSS.
 */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** S3's smallest part (but the last): the part size of the archives of a parallel set, uploaded at once. */
export const S3_MIN_PART_SIZE = 5 * MiB;
const PARTS_IN_FLIGHT_BUDGET = 2 * DEFAULT_PART_SIZE;

/**
 * An upper bound on a dump's size from pg_database_size. A dump holds no indexes, no dead rows and no free space,
 * so it is usually smaller than the database; but COPY writes bytea as hex (twice its bytes) and TOAST-compressed
 * text expanded. Hence twice the database's size for a compressed dump, four times uncompressed; never more than S3
 * can store.
 */
export function dumpSizeBound(databaseBytes: number, compressed: boolean): number {
  return Math.min(S3_MAX_OBJECT_SIZE, Math.max(0, databaseBytes) * (compressed ? 2 : 4));
}

export interface PartPlan {
  partSize: number;
  /** Parts uploaded at once: fewer when parts are large, so memory stays about 16 MiB of parts (one part at least). */
  queueSize: number;
  /** The largest object these parts can carry. */
  capacity: number;
}

/**
 * Parts for an object of at most `expectedBytes` (unknown: the default part size). `concurrent`: how many uploads run
 * at once (a parallel backup set), which share the memory budget of parts in flight (one part each at least), with
 * parts of S3's minimum size, 5 MiB, unless the bound needs larger.
 */
export function partPlan(expectedBytes: number | undefined, limits: { maxParts?: number; minPartSize?: number } = {}, concurrent = 1): PartPlan {
  const maxParts = limits.maxParts ?? S3_MAX_PARTS;
  const minPartSize = limits.minPartSize ?? (concurrent > 1 ? S3_MIN_PART_SIZE : DEFAULT_PART_SIZE);
  const needed = expectedBytes ? Math.ceil(expectedBytes / maxParts / MiB) * MiB : 0;
  const partSize = Math.min(S3_MAX_PART_SIZE, Math.max(minPartSize, needed));
  return { partSize, queueSize: Math.max(1, Math.min(2, Math.floor(PARTS_IN_FLIGHT_BUDGET / Math.max(1, concurrent) / partSize))), capacity: partSize * maxParts };
}
