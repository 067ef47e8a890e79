import { AttemptError, CONFIG_ERROR, LifeboatError, redact } from "@lifeboat/core";

/**
 * Turns what libpq, pg_dump, pg_restore and the S3 SDK say into an AttemptError that says whether another attempt
 * can help. Messages are redacted of the given secrets.
 */
const RULES: Array<{ re: RegExp; code: string; kind: "transient" | "permanent"; hint?: string }> = [
  { re: /password authentication failed|authentication failed|no password supplied|fe_sendauth/i, code: "auth_failed", kind: "permanent", hint: "check the user and the password (its environment variable or SSM parameter)" },
  { re: /role "[^"]*" does not exist/i, code: "auth_failed", kind: "permanent", hint: "check the user name" },
  { re: /no pg_hba\.conf entry/i, code: "auth_failed", kind: "permanent", hint: "the server's pg_hba.conf does not admit this client; ask its administrator, or try sslmode=require" },
  { re: /database "[^"]*" does not exist/i, code: "unknown_database", kind: "permanent", hint: "check the database name (psql -l lists them)" },
  { re: /permission denied/i, code: "permission_denied", kind: "permanent", hint: "the user needs SELECT on every dumped table (for example GRANT pg_read_all_data TO <user>)" },
  { re: /server version mismatch/i, code: "pg_dump_too_old", kind: "permanent", hint: "install a pg_dump of the server's major version or newer" },
  { re: /could not translate host name|Name or service not known|nodename nor servname/i, code: "unknown_host", kind: "permanent", hint: "check the host name" },
  { re: /Temporary failure in name resolution/i, code: "dns_temporary", kind: "transient" },
  { re: /Connection refused/i, code: "connection_refused", kind: "transient", hint: "is the server running and accepting TCP connections on that host and port?" },
  { re: /timeout expired|timed out|No route to host|Network is unreachable/i, code: "connection_timeout", kind: "transient", hint: "check the host, the port, security groups and firewalls" },
  { re: /the database system is (starting up|shutting down|in recovery mode)|too many clients|remaining connection slots/i, code: "server_unavailable", kind: "transient" },
  { re: /server closed the connection unexpectedly|terminating connection|connection to server was lost|could not receive data|SSL SYSCALL error/i, code: "connection_lost", kind: "transient" },
  // pg_dump --lock-wait-timeout cancels its LOCK TABLE with a statement timeout
  { re: /could not obtain lock|lock timeout|canceling statement due to lock timeout|deadlock detected|statement timeout[\s\S]*LOCK TABLE/i, code: "lock_timeout", kind: "transient", hint: "another session holds a lock on a dumped table" },
];

/** libpq's "psql: error: " prefixes and tab-indented continuation lines, as one readable line. */
function tidy(text: string): string {
  return text
    .replace(/\b(psql|pg_dump|pg_restore|pg_dumpall): (error|fatal|detail|hint): /gi, "")
    .replace(/\n\t+/g, " ")
    .trim();
}

export function classifyPgMessage(text: string, secrets: Iterable<string | undefined>, fallback = "pg_error"): AttemptError {
  const clean = redact(tidy(text), secrets);
  for (const rule of RULES) {
    if (rule.re.test(clean)) {
      return new AttemptError(rule.code, rule.kind, clean, rule.hint === undefined ? {} : { hint: rule.hint });
    }
  }
  // An error we do not recognise is retried: a backup is worth a second try, and the attempts are all reported.
  return new AttemptError(fallback, "transient", clean);
}

const NODE_TRANSIENT = new Set(["ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EPIPE", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH", "UND_ERR_SOCKET", "TimeoutError"]);
const S3_TRANSIENT = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable", "TooManyRequestsException"]);
const S3_HINTS: Record<string, string> = {
  NoSuchBucket: "create the bucket or fix its name in the store URL / config",
  AccessDenied: "the credentials may not write to this bucket and prefix",
  InvalidAccessKeyId: "check AWS_ACCESS_KEY_ID / the AWS profile",
  SignatureDoesNotMatch: "check AWS_SECRET_ACCESS_KEY / the AWS profile",
  CredentialsProviderError: "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
};

/** Any error from an attempt, as an AttemptError. */
export function toAttemptError(err: unknown, secrets: Iterable<string | undefined>): AttemptError {
  if (err instanceof AttemptError) {
    const msg = redact(err.message, secrets);
    if (msg === err.message) return err;
    return new AttemptError(err.code, err.kind, msg, err.hint === undefined ? {} : { hint: err.hint });
  }
  // a configuration error (exit code 2: an unset secret variable, no CA bundle) cannot be fixed by another attempt
  if (err instanceof LifeboatError && err.exitCode === 2) {
    return new AttemptError(CONFIG_ERROR, "permanent", redact(err.message, secrets), err.hint === undefined ? {} : { hint: err.hint });
  }
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const message = redact(e?.message ?? String(err), secrets);
  // network failures first: the SDK attaches $metadata to them too (with no HTTP status), and they are transient
  const netCode = [e?.code, e?.name].find((c) => c !== undefined && NODE_TRANSIENT.has(c));
  if (netCode) return new AttemptError(netCode.toLowerCase(), "transient", e?.$metadata ? `object store: ${message}` : message);
  if (e && e.$metadata) {
    const status = e.$metadata.httpStatusCode ?? 0;
    const name = e.name ?? "S3Error";
    // no HTTP status: the request never got an answer (a socket error the SDK did not name), worth another attempt
    const transient = status === 0 || status >= 500 || status === 429 || S3_TRANSIENT.has(name) || Boolean(e.$retryable);
    const hint = S3_HINTS[name];
    return new AttemptError(`s3_${name}`, transient ? "transient" : "permanent", `object store: ${name}${status ? ` (HTTP ${status})` : ""}: ${message}`, hint ? { hint } : {});
  }
  // the SDK's configuration errors (no region, no credentials) come without $metadata: no request was made
  if (/Region is missing|Region not accepted/i.test(e?.message ?? "")) {
    return new AttemptError("s3_region", "permanent", `object store: ${message}`, { hint: "set storage.s3.region (or AWS_REGION), or storage.s3.endpoint for an S3-compatible store" });
  }
  if (e?.name === "CredentialsProviderError") {
    return new AttemptError("s3_credentials", "permanent", `object store: ${message}`, { hint: S3_HINTS.CredentialsProviderError! });
  }
  if (e?.code && NODE_TRANSIENT.has(e.code)) return new AttemptError(e.code.toLowerCase(), "transient", message);
  if (e?.code === "ENOSPC") return new AttemptError("no_space", "transient", message, { hint: "the destination disk is full" });
  if (e?.code === "EACCES" || e?.code === "EPERM") return new AttemptError("fs_permission", "permanent", message);
  return new AttemptError("error", "transient", message);
}
