/**
 * A {@linkcode SqlSession} over the Postgres wire protocol with postgres.js.
 *
 * @module
 */

import postgres from "postgres";
import type { ConnectionSettings } from "./connection.ts";
import { StoreError } from "./errors.ts";
import type { SqlSession, TextRow } from "./_sql.ts";

/**
 * Opens one connection and keeps it for the whole session, so that a
 * transaction and its cursor stay on the same backend.
 *
 * @param settings The parsed `DATABASE_URL`.
 * @returns The session.
 * @throws {StoreError} When the server cannot be reached or refuses the login.
 */
export async function openPostgresSession(
  settings: ConnectionSettings,
): Promise<SqlSession> {
  // Every option postgres.js would otherwise read from PG* environment
  // variables is given here, so the script needs no extra env grants.
  const options = {
    host: settings.host,
    port: settings.port,
    database: settings.database,
    username: settings.user,
    password: settings.password,
    ssl: settings.tls === false ? false : { ...settings.tls },
    prepare: settings.prepare,
    connect_timeout: settings.connectTimeout,
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    max_pipeline: 100,
    keep_alive: 60,
    backoff: () => 0,
    debug: false,
    // fetch_types: false makes reserve() hang (postgres.js 3.4.9).
    fetch_types: true,
    publications: "alltables",
    target_session_attrs: undefined,
    onnotice: () => {},
    sslnegotiation: null,
    connection: { application_name: "memkeep", ...settings.params },
  };
  const sql = postgres(options as postgres.Options<Record<string, never>>);
  let reserved: postgres.ReservedSql;
  try {
    reserved = await sql.reserve();
    await reserved.unsafe("select 1");
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreError(
      `Cannot connect to ${settings.display}: ${
        describeConnectError(error, settings)
      }`,
      { cause: error },
    );
  }
  let closed = false;
  return {
    async query(
      text: string,
      params: (string | null)[] = [],
    ): Promise<TextRow[]> {
      try {
        return await reserved.unsafe(text, params)
          .values() as unknown as TextRow[];
      } catch (error) {
        throw new StoreError(describeQueryError(error, settings), {
          cause: error,
        });
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      reserved.release();
      await sql.end({ timeout: 1 });
    },
  };
}

function describeConnectError(
  error: unknown,
  settings: ConnectionSettings,
): string {
  const e = error as { code?: string; message?: string };
  switch (e.code) {
    case "ECONNREFUSED":
      return `connection refused (is the server running on ${settings.host}:${settings.port}?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `host "${settings.host}" not found`;
    case "CONNECT_TIMEOUT":
      return `no answer within ${settings.connectTimeout} s`;
    case "ECONNRESET":
      return "the server closed the connection";
    case "28P01":
      return `password authentication failed for user "${settings.user}"`;
    case "3D000":
      return `database "${settings.database}" does not exist`;
    default:
      return (e.message ?? String(error)).replace(/\s+/g, " ");
  }
}

function describeQueryError(
  error: unknown,
  settings: ConnectionSettings,
): string {
  const e = error as { code?: string; message?: string };
  if (
    e.code === "CONNECTION_CLOSED" || e.code === "CONNECTION_ENDED" ||
    e.code === "ECONNRESET"
  ) {
    return `Lost the connection to ${settings.display}`;
  }
  return (e.message ?? String(error)).replace(/\s+/g, " ");
}
