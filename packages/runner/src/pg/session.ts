import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { classifyPgMessage } from "./classify.js";
import { toolEnv, type ConnectionInfo } from "./connection.js";
import { findPsql, parsePsqlRows, psqlArgs } from "./psql.js";

/**
 * One long-lived psql connection driven through a pipe: statements run in order in the same session, so a
 * transaction (and its snapshot) stays open between them. libpq does the connecting, exactly as for pg_dump.
 */
export class PsqlSession {
  private buffer = "";
  private stderr = "";
  private waiting: { marker: string; resolve: (rows: string[][]) => void; reject: (e: Error) => void } | undefined;
  private exited = false;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly conn: ConnectionInfo,
  ) {
    child.stdout.on("data", (d: Buffer) => {
      this.buffer += d.toString("utf8");
      this.drain();
    });
    child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString("utf8")));
    child.stdin.on("error", () => {});
    child.on("close", (code) => {
      this.exited = true;
      this.waiting?.reject(classifyPgMessage(this.stderr || `psql exited with code ${code}`, [conn.password]));
      this.waiting = undefined;
    });
  }

  static async open(conn: ConnectionInfo, database?: string): Promise<PsqlSession> {
    const psql = await findPsql();
    const child = spawn(psql.path, psqlArgs(conn, database), {
      env: toolEnv(conn),
      stdio: ["pipe", "pipe", "pipe"],
    });
    return new PsqlSession(child, conn);
  }

  private drain(): void {
    if (!this.waiting) return;
    const end = this.buffer.indexOf(`${this.waiting.marker}\n`);
    if (end < 0) return;
    const text = this.buffer.slice(0, end);
    this.buffer = this.buffer.slice(end + this.waiting.marker.length + 1);
    const w = this.waiting;
    this.waiting = undefined;
    w.resolve(parsePsqlRows(text));
  }

  /** Runs SQL (one or more statements) and returns the rows it printed. */
  query(sql: string): Promise<string[][]> {
    if (this.exited) return Promise.reject(classifyPgMessage(this.stderr || "psql has exited", [this.conn.password]));
    if (this.waiting) return Promise.reject(new Error("PsqlSession: one query at a time"));
    const marker = `__lifeboat_${randomBytes(6).toString("hex")}__`;
    return new Promise((resolve, reject) => {
      this.waiting = { marker, resolve, reject };
      this.child.stdin.write(`${sql.trim().replace(/;?$/, ";")}\n\\echo ${marker}\n`);
    });
  }

  /** Ends the session at once (an aborted run): a query in flight is rejected, its transaction rolled back by the server. */
  kill(): void {
    if (!this.exited) this.child.kill("SIGTERM");
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once("close", () => r()));
    this.child.stdin.end("\\q\n");
    await done;
  }
}

/** SQL string literal. */
export function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** SQL identifier. */
export function ident(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
